//! Remote mode: rule expressions are sent to a Prometheus-compatible query API (Prometheus,
//! VictoriaMetrics, Thanos, Mimir) instead of the embedded store.

use promql_parser::parser::Expr;
use serde_json::Value as Json;
use vigie_promql::{Labels, Sample, Series, Value, format_go_float};

use crate::config::Remote;
use crate::rules::group::Backend;

/// A client of `/api/v1/query`, used from the blocking threads rules evaluate on.
pub struct RemoteBackend {
    pub remote: Remote,
    pub client: reqwest::Client,
    pub runtime: tokio::runtime::Handle,
}

impl RemoteBackend {
    pub fn new(remote: Remote, client: reqwest::Client) -> Self {
        RemoteBackend {
            remote,
            client,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Runs an instant query at `ts` (ms) and decodes the result.
    pub fn instant(&self, query: &str, ts: i64) -> Result<Value, String> {
        let url = format!("{}/api/v1/query", self.remote.url);
        let form = format!(
            "query={}&time={}",
            gotmpl::url_encode(query),
            format_go_float(ts as f64 / 1000.0)
        );
        let mut req = self
            .client
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .timeout(std::time::Duration::from_millis(
                self.remote.timeout_ms.max(1) as u64,
            ));
        if let Some((u, p)) = &self.remote.basic_auth {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(t) = &self.remote.bearer_token {
            req = req.bearer_auth(t);
        }
        let body = self.runtime.block_on(async {
            let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
            Ok::<_, String>((status, text))
        })?;
        let (status, text) = body;
        let json: Json = serde_json::from_str(&text)
            .map_err(|e| format!("{url}: HTTP {status}: not a query API response: {e}"))?;
        if json["status"] != "success" {
            return Err(format!(
                "{url}: {}: {}",
                json["errorType"].as_str().unwrap_or("error"),
                json["error"].as_str().unwrap_or(&text)
            ));
        }
        decode(&json["data"], ts)
    }
}

fn float(v: &Json) -> Result<f64, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("sample value {v} is not a string"))?;
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        other => other
            .parse()
            .map_err(|_| format!("sample value {other:?} is not a float")),
    }
}

fn labels(v: &Json) -> Labels {
    let mut l = Labels::new();
    if let Some(m) = v.as_object() {
        for (k, v) in m {
            l.set(k, v.as_str().unwrap_or_default().to_string());
        }
    }
    l
}

fn time_ms(v: &Json) -> Result<i64, String> {
    v.as_f64()
        .map(|t| (t * 1000.0).round() as i64)
        .ok_or_else(|| format!("timestamp {v} is not a number"))
}

/// Decodes the `data` object of a query response.
pub fn decode(data: &Json, ts: i64) -> Result<Value, String> {
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("vector") => {
            let mut out = Vec::new();
            for s in result.as_array().into_iter().flatten() {
                if s.get("histogram").is_some() {
                    return Err("native histogram samples are not supported".into());
                }
                out.push(Sample {
                    metric: labels(&s["metric"]),
                    t: ts,
                    v: float(&s["value"][1])?,
                });
            }
            Ok(Value::Vector(out))
        }
        Some("scalar") => Ok(Value::Scalar(float(&result[1])?)),
        Some("string") => Ok(Value::String(
            result[1].as_str().unwrap_or_default().to_string(),
        )),
        Some("matrix") => {
            let mut out = Vec::new();
            for s in result.as_array().into_iter().flatten() {
                let mut points = Vec::new();
                for p in s["values"].as_array().into_iter().flatten() {
                    points.push((time_ms(&p[0])?, float(&p[1])?));
                }
                out.push(Series {
                    metric: labels(&s["metric"]),
                    points,
                });
            }
            Ok(Value::Matrix(out))
        }
        other => Err(format!("unknown result type {other:?}")),
    }
}

impl Backend for RemoteBackend {
    fn query(&self, _expr: &Expr, text: &str, ts: i64) -> Result<Value, String> {
        self.instant(text, ts)
    }

    /// The remote store is not written to (recording rules are refused in remote mode).
    fn append(&self, _samples: &[(Labels, f64)], _t: i64) {}
}
