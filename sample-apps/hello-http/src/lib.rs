//! hello-http: a `wasi:http/proxy` component that answers every request with a greeting.
//!
//! The greeting comes from the environment (`GREETING`, `POD_NAME`) so tests and the
//! sample Deployment can see that a pod's `env` (including the downward API) reaches the guest.
//! Each request also writes one line to stdout so the pod's logs show traffic.
//!
//! Two paths misbehave on purpose, for the runtime's limits: `/spin` computes forever (the
//! request timeout must end it) and `/alloc/N` holds N MiB while answering (the memory limit).

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
