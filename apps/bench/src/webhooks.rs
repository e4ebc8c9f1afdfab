//! Webhook intake: a burst of signed Stripe Connect deliveries, 10% of them repeats, at a running
//! server; every answer must be 200, the answers must count each distinct event accepted exactly
//! once, and `webhook_events` must hold exactly the distinct events afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};
use hmac::{KeyInit as _, Mac as _};
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::{Value, json};

use crate::{quantile, round};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's base URL.
    #[arg(long)]
    url: String,
    /// The database the server writes to, to check the stored count.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// The server's `STRIPE_WEBHOOK_SECRET`.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// The Connect account the deliveries are for (a connection's `external_account_id`).
    #[arg(long, default_value = "bench-stripe-account")]
    account: String,
    /// Deliveries in all, repeats included.
    #[arg(long, default_value_t = 20_000)]
    deliveries: usize,
    /// Percent of the deliveries that repeat another one.
    #[arg(long, default_value_t = 10)]
    duplicate_percent: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

/// One prepared request: its body and `Stripe-Signature`.
#[derive(Debug)]
struct Delivery {
    body: Vec<u8>,
    signature: String,
}

fn sign(secret: &str, timestamp: i64, body: &[u8]) -> anyhow::Result<String> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .context("bad webhook secret")?;
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// The deliveries in sending order: `distinct` events, then repeats of every `distinct / repeats`-th
/// one, shuffled deterministically (so a repeat may race its original).
fn prepare(args: &Args, run: &str) -> anyhow::Result<(Vec<Delivery>, usize)> {
    let repeats = args.deliveries * args.duplicate_percent / 100;
    let distinct = args.deliveries - repeats;
    ensure!(distinct > 0, "no distinct delivery to send");
    let now = chrono::Utc::now().timestamp();
    let event = |index: usize| -> anyhow::Result<Delivery> {
        let body = serde_json::to_vec(&json!({
            "id": format!("evt_{run}_{index:07}"),
            "object": "event",
            "account": args.account,
            "api_version": "2025-03-31.basil",
            "created": now,
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "type": "customer.updated",
            "data": {"object": {"id": format!("cus_{index:08}"), "object": "customer", "email": format!("c{index}@example.com")}}
        }))?;
        let signature = sign(&args.secret, now, &body)?;
        Ok(Delivery { body, signature })
    };
    let mut order: Vec<usize> = (0..distinct).collect();
    order.extend((0..repeats).map(|k| (k * distinct / repeats.max(1)) % distinct));
    // Fisher–Yates with a fixed xorshift: the same order every run.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = usize::try_from(state % (i as u64 + 1))?;
        order.swap(i, j);
    }
    let deliveries = order
        .into_iter()
        .map(event)
        .collect::<anyhow::Result<_>>()?;
    Ok((deliveries, distinct))
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    accepted: u64,
    duplicates: u64,
    unknown: u64,
    failures: u64,
    first_failure: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<String> {
    ensure!(args.concurrency > 0, "--concurrency must be positive");
    ensure!(
        args.duplicate_percent < 100,
        "--duplicate-percent must be below 100"
    );
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let (deliveries, distinct) = prepare(&args, &run)?;
    let deliveries = Arc::new(deliveries);
    let url = format!("{}/webhooks/stripe", args.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));

    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, url, deliveries, next) = (
            client.clone(),
            url.clone(),
            deliveries.clone(),
            next.clone(),
        );
        clients.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(delivery) = deliveries.get(index) else {
                    break;
                };
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("stripe-signature", &delivery.signature)
                    .body(delivery.body.clone())
                    .send()
                    .await;
                let outcome = match answer {
                    Ok(response) if response.status().is_success() => {
                        response.json::<Value>().await.map_err(|e| e.to_string())
                    }
                    Ok(response) => Err(format!("status {}", response.status())),
                    Err(error) => Err(error.to_string()),
                };
                tally
                    .latencies_ms
                    .push(sent.elapsed().as_secs_f64() * 1000.0);
                match outcome {
                    Ok(counts) => {
                        let field =
                            |name: &str| counts.get(name).and_then(Value::as_u64).unwrap_or(0);
                        tally.accepted += field("accepted");
                        tally.duplicates += field("duplicates");
                        tally.unknown += field("unknown_account");
                    }
                    Err(error) => {
                        tally.failures += 1;
                        tally.first_failure.get_or_insert(error);
                    }
                }
            }
            tally
        });
    }
    let mut all = Tally::default();
    while let Some(joined) = clients.join_next().await {
        let tally = joined?;
        all.latencies_ms.extend(tally.latencies_ms);
        all.accepted += tally.accepted;
        all.duplicates += tally.duplicates;
        all.unknown += tally.unknown;
        all.failures += tally.failures;
        if all.first_failure.is_none() {
            all.first_failure = tally.first_failure;
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    if all.failures > 0 {
        bail!(
            "bench webhooks: {} of {} deliveries failed; first: {}",
            all.failures,
            deliveries.len(),
            all.first_failure.unwrap_or_default()
        );
    }
    let repeats = deliveries.len() - distinct;
    if all.accepted != u64::try_from(distinct)?
        || all.duplicates != u64::try_from(repeats)?
        || all.unknown != 0
    {
        bail!(
            "bench webhooks: the server answered accepted {}, duplicates {}, unknown account {}; expected {distinct}, {repeats}, 0",
            all.accepted,
            all.duplicates,
            all.unknown
        );
    }
    let db = migration::connect(&args.database_url, 1)
        .await
        .context("bench webhooks: cannot connect to DATABASE_URL")?;
    let stored = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT count(*) FROM webhook_events WHERE event_id LIKE $1",
            [format!("%:stripe:evt_{run}_%").into()],
        ))
        .await?
        .context("count returned no row")?
        .try_get_by_index::<i64>(0)?;
    ensure!(
        stored == i64::try_from(distinct)?,
        "bench webhooks: webhook_events holds {stored} of this run's events, expected {distinct}"
    );

    all.latencies_ms.sort_by(f64::total_cmp);
    let latencies = &all.latencies_ms;
    #[allow(clippy::cast_precision_loss)]
    let rate = deliveries.len() as f64 / seconds;
    Ok(json!({
        "workload": "webhook_intake",
        "concurrency": args.concurrency,
        "deliveries": deliveries.len(),
        "distinct_events": distinct,
        "duplicates": repeats,
        "stored_events": stored,
        "errors": 0,
        "seconds": round(seconds, 3),
        "rps": round(rate, 1),
        "p50_ms": round(quantile(latencies, 0.50), 3),
        "p90_ms": round(quantile(latencies, 0.90), 3),
        "p99_ms": round(quantile(latencies, 0.99), 3),
        "max_ms": round(quantile(latencies, 1.0), 3),
        "unit": "deliveries/s (verified and deduplicated, repeats included) over the burst; latency per delivery in ms",
        "measured_by": "bench-harness webhooks: POST /webhooks/stripe with valid Stripe-Signature from N concurrent reqwest clients on loopback; answers' accepted/duplicates and webhook_events count checked exact",
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenth_of_the_deliveries_repeat_an_earlier_event() -> anyhow::Result<()> {
        let args = Args {
            url: String::new(),
            database_url: String::new(),
            secret: "whsec_test".to_owned(),
            account: "acct".to_owned(),
            deliveries: 1_000,
            duplicate_percent: 10,
            concurrency: 1,
        };
        let (deliveries, distinct) = prepare(&args, "run")?;
        assert_eq!((deliveries.len(), distinct), (1_000, 900));
        let mut ids: Vec<String> = deliveries
            .iter()
            .map(|d| serde_json::from_slice::<Value>(&d.body).map(|v| v["id"].to_string()))
            .collect::<Result<_, _>>()?;
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 900, "every distinct event is sent, 100 twice");
        let first = &deliveries[0];
        let timestamp: i64 = first.signature[2..first.signature.find(',').unwrap_or(2)].parse()?;
        assert_eq!(first.signature, sign("whsec_test", timestamp, &first.body)?);
        Ok(())
    }
}
