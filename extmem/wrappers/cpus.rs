// SPDX-License-Identifier: GPL-2.0

//! Running a function on several CPUs at once (`extmem/cpus.c`), for the KUnit cases that
//! measure the per-CPU magazines.

use core::ffi::c_void;
use kernel::bindings;

/// What each thread calls: the shared data and the thread's index.
struct Call<'a, T> {
    data: &'a T,
    f: fn(&T, u32),
}

/// The C entry of each thread.
///
/// # Safety
///
/// `p` must point to a live `Call<'_, T>`.
unsafe extern "C" fn trampoline<T: Sync>(p: *mut c_void, i: u32) {
    // SAFETY: `run` passes a pointer to its `Call<'_, T>`, which lives until
    // `extmem_run_on_cpus()` returns, after every thread has returned from here.
    let call = unsafe { &*p.cast_const().cast::<Call<'_, T>>() };
    (call.f)(call.data, i)
}

/// Runs `f(data, i)` for `i` in `0..n` on `n` kthreads at once, thread `i` bound to the
/// `i`-th online CPU, and waits for all of them. `n` is capped at the number of online CPUs;
/// returns how many ran (0 if the threads could not be created: then `f` did not run). May
/// sleep.
pub(crate) fn run<T: Sync>(n: u32, data: &T, f: fn(&T, u32)) -> u32 {
    let call = Call { data, f };
    // SAFETY: `extmem_run_on_cpus()` calls `trampoline::<T>` with the pointer to `call` on
    // each thread and returns only once all of them have returned, so `call` (and `data`)
    // outlive every use; `T: Sync`, so sharing `&T` between the threads is sound.
    unsafe {
        bindings::extmem_run_on_cpus(
            n,
            Some(trampoline::<T>),
            (&raw const call).cast_mut().cast::<c_void>(),
        )
    }
}

/// Returns the number of online CPUs.
pub(crate) fn online() -> u32 {
    // SAFETY: `extmem_nr_online_cpus()` only reads the online mask's weight.
    unsafe { bindings::extmem_nr_online_cpus() }
}
