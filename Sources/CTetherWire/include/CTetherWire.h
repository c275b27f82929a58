// Umbrella header of CTetherWire: the protoc-c output for proto/tether.proto (regenerate with
// scripts/gen-proto) and the small C helpers TetherWire needs on its hot paths.
#ifndef CTETHERWIRE_H
#define CTETHERWIRE_H

#include "tether.pb-c.h"
#include "tether_wire_support.h"

#endif
