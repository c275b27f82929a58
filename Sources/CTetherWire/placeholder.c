// Placeholder until scripts/gen-proto writes tether.pb-c.c
