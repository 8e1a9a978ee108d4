// SPDX-License-Identifier: GPL-2.0

//! Capability checks of the current task.

use kernel::bindings;

/// A capability, as `include/uapi/linux/capability.h` numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Capability(u32);

impl Capability {
    /// `CAP_SYS_ADMIN`.
    pub(crate) const SYS_ADMIN: Self = Self(bindings::CAP_SYS_ADMIN);

    /// Returns true if the current task has this capability in its effective set.
    ///
    /// Like `capable()`, a successful check marks the task as having used a privilege
    /// (`PF_SUPERPRIV`) and is audited.
    pub(crate) fn current_has(self) -> bool {
        // The numbers of the UAPI header are all below `i32::MAX`; anything else is not a
        // capability `capable()` knows.
        let Ok(cap) = i32::try_from(self.0) else {
            return false;
        };
        // SAFETY: `capable()` may be called from any process context and reads only the
        // current task's credentials.
        unsafe { bindings::capable(cap) }
    }
}
