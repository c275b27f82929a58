// Umbrella header for the protoc-c output (replaced by scripts/gen-proto's include).
