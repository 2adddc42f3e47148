//! The two ways to apply load: closed loop (each worker waits for its reply
//! before the next request) and fixed rate (requests leave on a schedule, and
//! latency is measured from the *scheduled* time, so a stalled server cannot
//! hide its stall: no coordinated omission).

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use hdrhistogram::Histogram;
use tokio::{sync::Semaphore, time::Instant};

use crate::stats::{histogram, record};

/// What a load run measured.
pub struct Measured {
    pub hist: Histogram<u64>,
    pub errors: u64,
    pub elapsed: Duration,
}

/// Runs one worker per state for `duration`. `op` takes the worker's state
/// and gives it back with the outcome, so a worker can own its socket.
pub async fn closed_loop<S, F, Fut>(states: Vec<S>, duration: Duration, op: F) -> Measured
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (S, anyhow::Result<()>)> + Send,
{
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = Vec::with_capacity(states.len());
    for state in states {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut errors = 0u64;
            let mut state = state;
            while Instant::now() < end {
                let sent = Instant::now();
                let (next, outcome) = op(state).await;
                state = next;
                match outcome {
                    Ok(()) => record(&mut hist, sent.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (hist, errors)
        }));
    }
    let mut measured = Measured {
        hist: histogram(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        if let Ok((hist, errors)) = task.await {
            let _ = measured.hist.add(&hist);
            measured.errors += errors;
        }
    }
    measured.elapsed = start.elapsed();
    measured
}

/// Starts `rate` operations per second for `duration`, each as its own task,
/// at most `max_in_flight` at once (beyond that the schedule slips and the
/// slip is counted as latency). Latency runs from the scheduled start.
pub async fn fixed_rate<F, Fut>(
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
    op: F,
) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let hist = Arc::new(Mutex::new(histogram()));
    let errors = Arc::new(AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let start = Instant::now();
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(scheduled).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (op, hist, errors) = (op.clone(), hist.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let outcome = op(i).await;
            let latency = scheduled.elapsed();
            drop(permit);
            match outcome {
                Ok(()) => record(&mut hist.lock().expect("histogram lock"), latency),
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let hist = hist.lock().expect("histogram lock").clone();
    Measured {
        hist,
        errors: errors.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With paused time the schedule is exact: one stalled operation must
    /// show up in the latency of every send it held back, not only in its own
    /// (the coordinated omission a fixed rate exists to avoid).
    #[tokio::test(start_paused = true)]
    async fn a_stall_counts_against_every_send_it_delays() {
        // 100/s for 1 s, one at a time; operation 0 takes 500 ms, the rest 1 ms.
        let measured = fixed_rate(100.0, Duration::from_secs(1), 1, |i| async move {
            let took = if i == 0 { 500 } else { 1 };
            tokio::time::sleep(Duration::from_millis(took)).await;
            Ok(())
        })
        .await;
        let hist = &measured.hist;
        assert_eq!((hist.len(), measured.errors), (100, 0));
        assert!(hist.max() >= 500_000, "max {} µs", hist.max());
        // Sends scheduled during the stall (10 ms apart) waited for it:
        // the one due at 10 ms waited ~490 ms, the one at 400 ms ~100 ms.
        let delayed = hist
            .iter_recorded()
            .filter(|v| v.value_iterated_to() >= 100_000);
        let delayed: u64 = delayed.map(|v| v.count_at_value()).sum();
        assert!(
            (40..=50).contains(&delayed),
            "{delayed} sends delayed ≥ 100 ms"
        );
    }

    /// Failed operations are counted as errors and kept out of the latencies.
    #[tokio::test(start_paused = true)]
    async fn errors_are_counted_not_timed() {
        let measured = closed_loop(vec![0u32; 2], Duration::from_millis(100), |n| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let outcome = if n % 2 == 0 {
                Ok(())
            } else {
                Err(anyhow::anyhow!("refused"))
            };
            (n + 1, outcome)
        })
        .await;
        // Each of the two workers: 10 operations in 100 ms, every other one failing.
        assert_eq!((measured.hist.len(), measured.errors), (10, 10));
        assert!(
            measured.hist.max() < 11_000,
            "max {} µs",
            measured.hist.max()
        );
    }
}
