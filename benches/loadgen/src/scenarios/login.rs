//! `login`: sign-ins per second, beside this machine's raw argon2id
//! verifications per second (same parameters as tether), and `me` latency
//! while the sign-ins saturate the CPU.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};

use super::{median_round, percent, percents, Bench, Target, ROUNDS};
use crate::{http::BENCH_PASSWORD, load, stats::Row};

/// tether's parameters (src/auth/password.rs): m=19456 KiB, t=2, p=1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Verifications per second with one thread per core, for `duration`. Each
/// thread hashes into one reused block buffer, as tether's hashing threads
/// do: allocating 19 MiB per verification (what `verify_password` does) costs
/// ~5,000 page faults each and would make the server look faster than "raw".
pub fn raw_argon2_rate(duration: Duration) -> f64 {
    let salt = SaltString::generate(&mut OsRng);
    let phc = argon2()
        .hash_password(BENCH_PASSWORD.as_bytes(), &salt)
        .expect("hash")
        .to_string();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (phc, stop, count) = (phc.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let parsed = PasswordHash::new(&phc).expect("phc");
                let expected = parsed.hash.expect("phc has a hash");
                let mut salt = [0u8; 64];
                let salt = parsed
                    .salt
                    .expect("phc has a salt")
                    .decode_b64(&mut salt)
                    .expect("salt");
                let hasher = argon2();
                let mut blocks = vec![Block::default(); hasher.params().block_count()];
                let mut out = vec![0u8; expected.len()];
                while !stop.load(Ordering::Relaxed) {
                    hasher
                        .hash_password_into_with_memory(
                            BENCH_PASSWORD.as_bytes(),
                            salt,
                            &mut out,
                            &mut blocks,
                        )
                        .expect("argon2 hash");
                    assert!(out == expected.as_bytes(), "argon2 verify failed");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let duration = bench.sizes.duration();
    for target in bench.targets.clone() {
        // Raw argon2id is measured in every round just before the sign-ins,
        // so each ratio compares measurements seconds apart.
        let mut rounds = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let raw = tokio::task::spawn_blocking(move || raw_argon2_rate(duration)).await?;
            let (logins, me) = measure(&target, bench).await?;
            rounds.push((logins.throughput / raw, (raw, logins, me)));
        }
        let (_, (raw, logins, me), keys) = median_round(rounds);
        let mut row = Row::new("argon2", "machine", format!("{} threads", threads())).note(
            "raw argon2id verifications/s in-process, m=19456 t=2 p=1, reused memory; \
             measured just before the login row below",
        );
        row.throughput = raw;
        bench.push(row);
        let ratio = percent(logins.throughput, Some(raw));
        bench.push(logins.note(format!(
            "{ratio} of raw argon2id (target >= 90%); median of {ROUNDS} rounds: {}",
            percents(&keys)
        )));
        let p99 = me.p99_ms.unwrap_or(f64::INFINITY);
        let met = if p99 < 20.0 { "met" } else { "MISSED" };
        bench.push(me.note(format!(
            "me while logins saturate the CPU: p99 < 20 ms {met}"
        )));
    }
    Ok(())
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Closed-loop sign-ins, with `me` at a fixed rate alongside.
async fn measure(target: &Target, bench: &Bench) -> anyhow::Result<(Row, Row)> {
    let sizes = &bench.sizes;
    let server = target.server.clone();
    let me_cookie = server.login(&target.users[0], BENCH_PASSWORD).await?;
    let me_server = server.clone();
    let me = tokio::spawn(load::fixed_rate(
        sizes.me_during_login_rate,
        sizes.duration(),
        256,
        move |_| {
            let (server, cookie) = (me_server.clone(), me_cookie.clone());
            async move { server.me(&cookie).await }
        },
    ));
    let users = target.users.clone();
    let states: Vec<usize> = (0..sizes.login_clients).collect();
    let logins = load::closed_loop(states, sizes.duration(), move |i| {
        let (server, user) = (server.clone(), users[i % users.len()].clone());
        async move {
            let outcome = server.login(&user, BENCH_PASSWORD).await.map(drop);
            (i, outcome)
        }
    })
    .await;
    let me = me.await?;
    let pid = target.server.pid;
    let label = target.label();
    let mut logins_row = Row::new("login", label, format!("closed(c={})", sizes.login_clients))
        .with_hist(&logins.hist, logins.elapsed)
        .rss(pid);
    logins_row.errors = logins.errors;
    let mut me_row = Row::new(
        "login+me",
        label,
        format!("fixed({}/s)", sizes.me_during_login_rate),
    )
    .with_hist(&me.hist, me.elapsed)
    .rss(pid);
    me_row.errors = me.errors;
    Ok((logins_row, me_row))
}
