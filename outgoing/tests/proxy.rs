//! A proxy named in the environment is not used: the allowlist is checked
//! against the URL's host, so that host is the one connected to. A binary
//! of its own, since the test sets the process's environment.

mod support;

use elmbox_outgoing::Ended;
use support::{app, client, reply, request, send, TestServer};

#[test]
fn a_proxy_from_the_environment_is_not_used() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let proxy = TestServer::start(|_| async { reply(200, &[], "from the proxy") }).await;
        let target = TestServer::start(|_| async { reply(200, &[], "from the target") }).await;
        let proxy_url = proxy.url("");
        for name in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            std::env::set_var(name, &proxy_url);
        }
        for name in ["NO_PROXY", "no_proxy"] {
            std::env::remove_var(name);
        }

        let (response, ended) = send(
            &client(),
            &app(&target.host()),
            request("GET", &target.url("/")),
        )
        .await;
        assert_eq!(ended, Ended::Ok);
        assert_eq!(response.body(), b"from the target");
        assert_eq!(proxy.connections(), 0);
        assert_eq!(target.connections(), 1);

        // A reqwest client left to its defaults goes through that proxy.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let plain = reqwest::Client::new();
        let body = plain
            .get(target.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "from the proxy");
        assert_eq!(proxy.connections(), 1);
    });
}
