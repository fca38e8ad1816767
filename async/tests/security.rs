//! The async front's pipes are current-user-only by default, and its
//! clients check who serves (the checks themselves are the core's, tested
//! in depth by mio-named-pipes' `tests/security.rs`).
#![cfg(all(windows, feature = "tokio"))]

mod util;

use std::io::ErrorKind;
use std::time::Duration;

use async_named_pipes::{ClientOptions, NamedPipe, PipeListener, PipeOwner, ServerOptions};
use util::name;

#[tokio::test(flavor = "current_thread")]
async fn listener_and_server_pipes_pass_the_current_user_check() {
    let name = name();
    let listener = PipeListener::bind(&name).unwrap();
    let client = ClientOptions::new()
        .current_user_only(true)
        .open(&name)
        .unwrap();
    let server = listener.accept().await.unwrap();
    assert_eq!(
        server.client_process_id().unwrap(),
        client.server_process_id().unwrap()
    );
    // A pipe made by this user is not LocalSystem's: refused before use.
    let e = ClientOptions::new()
        .expect_owner(&[PipeOwner::LocalSystem])
        .open(&name)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("S-1-5-18"), "{e}");

    let name = util::name();
    let _server = ServerOptions::new().create(&name).unwrap();
    let mut options = ClientOptions::new();
    options
        .expect_server_process_id(Some(std::process::id()))
        .current_user_only(true)
        .busy_timeout(Some(Duration::from_secs(1)));
    NamedPipe::open(&options, &name).await.unwrap();
}
