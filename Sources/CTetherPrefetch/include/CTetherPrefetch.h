#ifndef CTETHERPREFETCH_H
#define CTETHERPREFETCH_H

/// A software prefetch into L2 (`prefetcht1` on x86), which Swift has no spelling for. Inlined into
/// the Swift caller: the function is `static inline` in the imported header.
static inline void tether_prefetch_l2(const void *address) { __builtin_prefetch(address, 0, 2); }

#endif
