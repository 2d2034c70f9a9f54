//! hello-http: a `wasi:http/proxy` component that answers every request with a greeting.
//!
//! The greeting comes from the environment (`GREETING`, `POD_NAME`) so tests and the
//! sample Deployment can see that a pod's `env` (including the downward API) reaches the guest.
//! Each request also writes one line to stdout so the pod's logs show traffic.
//!
//! Two paths misbehave on purpose, for the runtime's limits: `/spin` computes forever (the
//! request timeout must end it) and `/alloc/N` holds N MiB while answering (the memory limit).
//! `/fetch/HOST[:PORT]/PATH` makes an outgoing `wasi:http` GET to `http://HOST[:PORT]/PATH` and
//! answers `fetched STATUS: BODY`, or 502 `fetch failed: ERROR` (e.g. when egress is denied).
//!
//! For probes: `/status/N` answers with status N, and `/healthz` answers 200 `ok` unless
//! `HEALTH_FILE` names a file (e.g. a mounted ConfigMap key) whose content is not `ok`, then 503
//! with that content — so flipping a ConfigMap flips the pod's health.

use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(App);

struct App;

const DEFAULT_GREETING: &str = "Hello, wasmkube";
const DEFAULT_POD_NAME: &str = "unknown";

impl wasip2::exports::http::incoming_handler::Guest for App {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_else(|| "/".to_string());
        println!("{} {path} from hello-http", method_name(&request.method()));

        let greeting = env_or("GREETING", DEFAULT_GREETING);
        let pod_name = env_or("POD_NAME", DEFAULT_POD_NAME);
        let mut body_text = format!("Hello from {pod_name}! {greeting}\n");
        if path == "/spin" {
            spin_forever();
        }
        if let Some(status) = path.strip_prefix("/status/").and_then(|n| n.parse::<u16>().ok()) {
            respond(response_out, status, &format!("status {status}\n"));
            return;
        }
        if path == "/healthz" {
            match health() {
                Ok(()) => respond(response_out, 200, "ok\n"),
                Err(why) => respond(response_out, 503, &format!("{why}\n")),
            }
            return;
        }
        if let Some(target) = path.strip_prefix("/fetch/") {
            body_text = match fetch(target) {
                Ok((status, body)) => format!("fetched {status}: {body}"),
                Err(error) => {
                    respond(response_out, 502, &format!("fetch failed: {error}\n"));
                    return;
                }
            };
        }
        // Kept alive until the response is written.
        let mut _held = Vec::new();
        if let Some(mib) = path.strip_prefix("/alloc/").and_then(|n| n.parse::<usize>().ok()) {
            _held = vec![0x5au8; mib << 20];
            body_text = format!("allocated {mib} MiB\n");
        }

        // Header values are ASCII literals and the length is a number, so appending cannot fail
        // on content; if it ever does we still send the body, just without that header.
        let headers = Fields::new();
        let _ = headers.append("content-type", b"text/plain; charset=utf-8");
        let _ = headers.append("content-length", body_text.len().to_string().as_bytes());

        let response = OutgoingResponse::new(headers);
        // status_code defaults to 200.
        let Ok(body) = response.body() else {
            eprintln!("hello-http: response body was already taken");
            return;
        };
        ResponseOutparam::set(response_out, Ok(response));

        match body.write() {
            Ok(mut out) => {
                // `std::io::Write` (not the inherent WASI `flush`) so both steps share one error type.
                let written = std::io::Write::write_all(&mut out, body_text.as_bytes())
                    .and_then(|()| std::io::Write::flush(&mut out));
                if let Err(e) = written {
                    eprintln!("hello-http: writing the body failed: {e}");
                }
            }
            Err(()) => eprintln!("hello-http: body stream was already taken"),
        }
        if let Err(e) = OutgoingBody::finish(body, None) {
            eprintln!("hello-http: finishing the body failed: {e:?}");
        }
    }
}

/// GET `http://<target>` through `wasi:http/outgoing-handler`; `target` is `host[:port]/path`.
fn fetch(target: &str) -> Result<(u16, String), String> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{OutgoingRequest, Scheme};
    let (authority, rest) = target.split_once('/').unwrap_or((target, ""));
    let request = OutgoingRequest::new(Fields::new());
    let path = format!("/{rest}");
    let set = request
        .set_scheme(Some(&Scheme::Http))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(&path)));
    set.map_err(|()| format!("bad target {target:?}"))?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("{code:?}")),
        _ => return Err("no response".into()),
    };
    let status = response.status();
    let body = response.consume().map_err(|()| "body already taken".to_string())?;
    let mut bytes = Vec::new();
    {
        let mut stream = body.stream().map_err(|()| "body stream already taken".to_string())?;
        std::io::Read::read_to_end(&mut stream, &mut bytes).map_err(|e| e.to_string())?;
    }
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// `Ok` unless `HEALTH_FILE` is set and its file does not say `ok`.
fn health() -> Result<(), String> {
    let Ok(file) = std::env::var("HEALTH_FILE") else {
        return Ok(());
    };
    match std::fs::read_to_string(&file) {
        Ok(text) if text.trim() == "ok" => Ok(()),
        Ok(text) => Err(format!("unhealthy: {}", text.trim())),
        Err(e) => Err(format!("cannot read {file}: {e}")),
    }
}

/// A short plain-text answer with `status`.
fn respond(response_out: ResponseOutparam, status: u16, text: &str) {
    let headers = Fields::new();
    let _ = headers.append("content-type", b"text/plain; charset=utf-8");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(mut out) = body.write() {
        let _ = std::io::Write::write_all(&mut out, text.as_bytes())
            .and_then(|()| std::io::Write::flush(&mut out));
    }
    let _ = OutgoingBody::finish(body, None);
}

fn spin_forever() -> ! {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn method_name(method: &Method) -> &str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
}
