// The module is header-only (`CTetherPrefetch.h`); SwiftPM wants one source file per C target.
#include "CTetherPrefetch.h"
