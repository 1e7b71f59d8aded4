//! The zone loader keeps the scanner's own panics off stderr without hiding anyone
//! else's: a panic on another thread while a zone is being scanned still reaches the
//! process's panic hook. (Its own test binary: panic hooks are process-wide.)

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

static SEEN: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_panic_elsewhere_during_a_reload_is_still_reported() {
    // The operator's hook (the default one prints the panic): count what reaches it.
    std::panic::set_hook(Box::new(|_| {
        SEEN.fetch_add(1, Ordering::SeqCst);
    }));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/zonefile");
    let crash = std::fs::read(dir.join("crash-domain-charstr-oob")).expect("the crash input");
    let text = String::from_utf8_lossy(&crash).into_owned();
    // The loader installs its hook on its first load. Installing one is not atomic in std
    // (take, then set): a panic elsewhere in that instant meets the default hook, which
    // prints it. So the first load comes before the race this test is about.
    let no_includes = &mut |_: &str, _: &str| Err("no includes".to_string());
    assert!(names_core::zone::load_zone("crash.zone", &text, no_includes).is_err());
    let stop = Arc::new(AtomicBool::new(false));
    let loads = Arc::new(AtomicUsize::new(0));
    let loader = {
        let (stop, loads) = (stop.clone(), loads.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) && loads.load(Ordering::SeqCst) < 1_000_000 {
                let no_includes = &mut |_: &str, _: &str| Err("no includes".to_string());
                assert!(names_core::zone::load_zone("crash.zone", &text, no_includes).is_err());
                loads.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // Panics on this thread while the loader scans (and panics) over and over: at least
    // 2000 of them, and until the loader has scanned 500 times.
    let mut panics = 0;
    while panics < 2000 || (loads.load(Ordering::SeqCst) < 500 && panics < 1_000_000) {
        let _ = std::panic::catch_unwind(|| panic!("a worker's panic"));
        panics += 1;
    }
    stop.store(true, Ordering::SeqCst);
    loader.join().expect("the loader never panics out");
    assert!(loads.load(Ordering::SeqCst) >= 500);
    assert_eq!(
        SEEN.load(Ordering::SeqCst),
        panics,
        "every panic outside the scanner reaches the hook; none of the scanner's does"
    );
}
