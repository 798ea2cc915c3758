//! sled panics on some damaged files (`cannot find pid … in
//! view_for_key`, an index out of bounds) instead of answering an error.
//! The calls that meet a damaged file first (opening it, the first reads,
//! the scans of recovery and of `nudge verify`) run under [`guarded`]: a
//! panic becomes [`StoreError::Unreadable`] naming the store folder, and
//! the default hook's trace is not printed for it.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

use super::StoreError;

thread_local! {
    /// Whether this thread is inside [`guarded`].
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once, a panic hook that stays silent for guarded calls and
/// hands every other panic to the hook that was there before.
fn quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f` (sled calls on the store in `folder`); a panic inside becomes
/// a clear error saying the store is damaged.
pub fn guarded<T>(
    folder: &Path,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    quiet_hook();
    let was = QUIET.with(|q| q.replace(true));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    outcome.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no detail");
        Err(StoreError::Damaged {
            path: folder.to_path_buf(),
            why: format!("sled failed reading its files ({why})"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_naming_the_folder() {
        let got: Result<(), _> =
            guarded(Path::new("/some/store"), || panic!("index out of bounds"));
        let text = got.unwrap_err().to_string();
        assert!(text.contains("/some/store"), "{text}");
        assert!(text.contains("index out of bounds"), "{text}");
        assert!(!QUIET.with(Cell::get));
    }
}
