// SPDX-License-Identifier: GPL-2.0

//! Live Update Orchestrator (LUO) file handlers.
//!
//! C header: [`include/linux/liveupdate.h`](srctree/include/linux/liveupdate.h)
//!
//! A file handler lets files of one kind be preserved in a `/dev/liveupdate` session: the old
//! kernel turns each preserved file into a `u64`, which LUO hands to the next kernel together
//! with the handler's compatible string; the next kernel turns it back into a file. Implement
//! [`FileHandler`] and keep a [`Registration`] of it alive.

use core::marker::PhantomData;
use kernel::bindings;
use kernel::error::to_result;
use kernel::fs::File;
use kernel::prelude::*;
use kernel::sync::aref::ARef;
use kernel::types::Opaque;

/// The operations of a LUO file handler.
///
/// LUO serialises the calls for one file; calls for different files may run concurrently.
pub(crate) trait FileHandler: 'static {
    /// The compatible string that names the serialised format, e.g. `c"memfd-v1"`.
    const COMPATIBLE: &'static CStr;

    /// Returns true if this handler can preserve `file`. Must be cheap.
    fn can_preserve(file: &File) -> bool;

    /// Preserves `file` and returns the data the next kernel's [`FileHandler::retrieve`] gets.
    fn preserve(file: &File) -> Result<u64>;

    /// Undoes [`FileHandler::preserve`] of `file`, which returned `data`.
    fn unpreserve(file: &File, data: u64);

    /// Last chance to refuse the kexec: called for each preserved file during
    /// `reboot(LINUX_REBOOT_CMD_KEXEC)`, before the kernel can no longer turn back. An error
    /// aborts the kexec, and `reboot()` returns it.
    fn freeze(data: u64) -> Result;

    /// In the next kernel: returns a new file for the preserved `data`.
    fn retrieve(data: u64) -> Result<ARef<File>>;

    /// In the next kernel: the session is finishing; releases what `data` still holds.
    /// `retrieved` says whether [`FileHandler::retrieve`] succeeded for it.
    fn finish(data: u64, retrieved: bool);
}

/// A registered LUO file handler, unregistered on drop.
///
/// # Invariants
///
/// Once initialised, `handler` is registered with LUO (on a kernel with `CONFIG_LIVEUPDATE`)
/// with the operations of `T`, until the registration is dropped.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: FileHandler> {
    #[pin]
    handler: Opaque<bindings::liveupdate_file_handler>,
    _t: PhantomData<T>,
}

// SAFETY: LUO allows unregistering from another task than the one that registered.
unsafe impl<T: FileHandler> Send for Registration<T> {}

// SAFETY: `&Registration` has no methods; LUO synchronises its own use of the handler.
unsafe impl<T: FileHandler> Sync for Registration<T> {}

impl<T: FileHandler> Registration<T> {
    /// Registers `T` with LUO.
    ///
    /// Fails with `EOPNOTSUPP` if live update is not enabled, `EEXIST` if a handler with the same
    /// compatible string is registered, `EINVAL` if the string is too long.
    pub(crate) fn register() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            handler <- Opaque::try_ffi_init(|slot: *mut bindings::liveupdate_file_handler| {
                let mut handler = bindings::liveupdate_file_handler {
                    ops: &Self::OPS,
                    ..pin_init::zeroed()
                };
                let name = T::COMPATIBLE.to_bytes_with_nul();
                if name.len() > handler.compatible.len() {
                    return Err(EINVAL);
                }
                for (c, &b) in handler.compatible.iter_mut().zip(name) {
                    *c = b;
                }
                // SAFETY: `try_ffi_init` guarantees that `slot` is valid for writes.
                unsafe { slot.write(handler) };
                Self::register_raw(slot)
            }),
            _t: PhantomData,
        })
    }

    #[cfg(CONFIG_LIVEUPDATE)]
    fn register_raw(slot: *mut bindings::liveupdate_file_handler) -> Result {
        // SAFETY: `slot` holds an initialised handler with valid operations and compatible
        // string. It is pinned, and `PinnedDrop` unregisters it before the memory goes away.
        // INVARIANT: On success, the handler is registered.
        to_result(unsafe { bindings::liveupdate_register_file_handler(slot) })
    }

    #[cfg(not(CONFIG_LIVEUPDATE))]
    fn register_raw(_slot: *mut bindings::liveupdate_file_handler) -> Result {
        Err(EOPNOTSUPP)
    }

    const OPS: bindings::liveupdate_file_ops = bindings::liveupdate_file_ops {
        can_preserve: Some(Self::can_preserve),
        preserve: Some(Self::preserve),
        unpreserve: Some(Self::unpreserve),
        freeze: Some(Self::freeze),
        retrieve: Some(Self::retrieve),
        finish: Some(Self::finish),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// `file` must be a valid file that the caller holds for the duration of the call.
    unsafe extern "C" fn can_preserve(
        _handler: *mut bindings::liveupdate_file_handler,
        file: *mut bindings::file,
    ) -> bool {
        // SAFETY: The caller holds `file` for the duration of the call, and the handler does not
        // use the file position, so no `fdget_pos()` rule applies.
        let file = unsafe { File::from_raw_file(file) };
        T::can_preserve(file)
    }

    /// # Safety
    ///
    /// `args` must be valid and for this call alone, with `args.file` a file the caller holds.
    unsafe extern "C" fn preserve(args: *mut bindings::liveupdate_file_op_args) -> c_int {
        // SAFETY: The caller guarantees `args` is valid and exclusive for the call.
        let args = unsafe { &mut *args };
        // SAFETY: As in `can_preserve()`.
        let file = unsafe { File::from_raw_file(args.file) };
        match T::preserve(file) {
            Ok(data) => {
                args.serialized_data = data;
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// As for [`Self::preserve`].
    unsafe extern "C" fn unpreserve(args: *mut bindings::liveupdate_file_op_args) {
        // SAFETY: The caller guarantees `args` is valid and exclusive for the call.
        let args = unsafe { &mut *args };
        // SAFETY: As in `can_preserve()`.
        let file = unsafe { File::from_raw_file(args.file) };
        T::unpreserve(file, args.serialized_data);
    }

    /// # Safety
    ///
    /// `args` must be valid and for this call alone.
    unsafe extern "C" fn freeze(args: *mut bindings::liveupdate_file_op_args) -> c_int {
        // SAFETY: The caller guarantees `args` is valid and exclusive for the call.
        let args = unsafe { &*args };
        match T::freeze(args.serialized_data) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `args` must be valid and for this call alone.
    unsafe extern "C" fn retrieve(args: *mut bindings::liveupdate_file_op_args) -> c_int {
        // SAFETY: The caller guarantees `args` is valid and exclusive for the call.
        let args = unsafe { &mut *args };
        match T::retrieve(args.serialized_data) {
            Ok(file) => {
                // LUO takes over our reference.
                args.file = ARef::into_raw(file).as_ptr().cast();
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// As for [`Self::retrieve`].
    unsafe extern "C" fn finish(args: *mut bindings::liveupdate_file_op_args) {
        // SAFETY: The caller guarantees `args` is valid and exclusive for the call.
        let args = unsafe { &*args };
        T::finish(args.serialized_data, args.retrieve_status > 0);
    }
}

#[pinned_drop]
impl<T: FileHandler> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: The handler is registered (type invariant) and is unregistered once, here.
        unsafe { unregister_raw(self.handler.get()) };
    }
}

/// Unregisters a file handler.
///
/// # Safety
///
/// `handler` must be registered with `liveupdate_register_file_handler()`.
#[cfg(CONFIG_LIVEUPDATE)]
unsafe fn unregister_raw(handler: *mut bindings::liveupdate_file_handler) {
    // SAFETY: Guaranteed by the caller.
    unsafe { bindings::liveupdate_unregister_file_handler(handler) };
}

/// Without `CONFIG_LIVEUPDATE` nothing is ever registered.
///
/// # Safety
///
/// None: nothing is registered.
#[cfg(not(CONFIG_LIVEUPDATE))]
unsafe fn unregister_raw(_handler: *mut bindings::liveupdate_file_handler) {}
