// OpenBLAS's cblas.h also declares openblas_set_num_threads, the per-process thread budget.
#include <cblas.h>
