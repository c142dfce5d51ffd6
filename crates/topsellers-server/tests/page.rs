//! The web page's script under failure: runs `tests/page/app_test.js` (a fake DOM and a scripted
//! server around `assets/app.js`) with Node.js. Skipped, loudly, where `node` is not installed.

use std::path::Path;
use std::process::Command;

#[test]
fn page_script_handles_failures_per_card() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/page/app_test.js");
    let output = match Command::new("node").arg(&script).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: node is not installed; install nodejs to test assets/app.js");
            return;
        }
        Err(e) => panic!("could not run node: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "app_test.js failed\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ok   "), "no checks ran\n{stdout}");
}
