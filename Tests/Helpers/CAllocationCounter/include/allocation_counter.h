#ifndef KILN_ALLOCATION_COUNTER_H
#define KILN_ALLOCATION_COUNTER_H

/// Heap allocations (malloc, calloc, realloc, aligned_alloc, posix_memalign, memalign) made by the calling thread
/// since it started. Linked into the test binary only: it defines those functions and forwards to glibc's.
unsigned long kiln_thread_allocations(void);

#endif
