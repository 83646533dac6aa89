//! The agent leaves when it has nothing to do, and the next client call
//! starts a new one. (Its own test binary: it shortens the idle time for
//! every agent this process starts.)

mod common;

use std::time::{Duration, Instant};

use common::{Home, shell_job, tenant};
use moon_core::backend::Phase;
use moon_core::spec::TenantQuota;

const LIMIT: Option<Duration> = Some(Duration::from_secs(60));

#[tokio::test]
async fn an_idle_agent_leaves_and_a_new_one_takes_over() {
    // SAFETY: this is the only test in this binary, and it sets the variable before any thread reads it.
    unsafe { std::env::set_var("MOON_AGENT_IDLE_SECONDS", "1") };
    let home = Home::new();
    tenant(&home.client, "team", TenantQuota::default()).await;
    home.client
        .submit(&shell_job("first", "true"))
        .await
        .expect("submit");
    let first = home
        .client
        .wait("team", "first", LIMIT)
        .await
        .expect("wait");
    assert_eq!(first.phase, Phase::Succeeded);
    let agent = home.agent_pid().expect("an agent ran");

    let deadline = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{agent}")).exists() {
        assert!(Instant::now() < deadline, "the idle agent did not leave");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        home.agent_pid().is_none(),
        "the agent left its pid file behind"
    );

    home.client
        .submit(&shell_job("second", "true"))
        .await
        .expect("submit");
    let second = home
        .client
        .wait("team", "second", LIMIT)
        .await
        .expect("wait");
    assert_eq!(second.phase, Phase::Succeeded);
    assert_ne!(home.agent_pid(), Some(agent));
}
