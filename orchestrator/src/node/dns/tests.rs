//! The DNS server end to end on loopback: a real hickory server over a directory, queried
//! with real UDP and TCP packets; a second server plays the upstream nameserver.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hickory_server::proto::{
    op::{Message, Query, ResponseCode},
    rr::{Name, RData, RecordType},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
    time::{Instant, timeout},
};

use super::*;

const PATIENCE: Duration = Duration::from_secs(10);

fn objects() -> (Vec<Arc<Value>>, Vec<Arc<Value>>) {
    let services = vec![
        Arc::new(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "127.16.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})),
        Arc::new(json!({"metadata": {"name": "pg", "namespace": "db"}, "spec": {"clusterIP": "None"}})),
        Arc::new(json!({"metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "web.default.svc.upstream.test"}})),
    ];
    let slices = vec![Arc::new(json!({
        "metadata": {"name": "pg-x", "namespace": "db", "labels": {"kubernetes.io/service-name": "pg"}},
        "endpoints": [{"addresses": ["127.64.0.7"], "hostname": "pg-0"}, {"addresses": ["127.64.0.8"]}],
    }))];
    (services, slices)
}

/// A free loopback port for both UDP and TCP (checked by binding both).
fn free_addr() -> SocketAddr {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp bind");
        let addr = udp.local_addr().expect("addr");
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// A server for `domain` over the test objects, forwarding to `upstream`.
async fn start(domain: &str, upstream: Upstream) -> (SocketAddr, Server<server::Handler>) {
    let listen = free_addr();
    let config = DnsConfig { listen, domain: domain.into(), host_resolv_conf: "/nonexistent".into() };
    let directory = SharedDirectory::default();
    let (services, slices) = objects();
    directory.replace(Directory::build(domain, &services, &slices));
    let server = serve(&config, directory, upstream).await.expect("serve");
    (listen, server)
}

fn query(name: &str, kind: RecordType) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = 4242;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), kind));
    message.to_vec().expect("encode")
}

async fn udp(server: SocketAddr, packet: &[u8]) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.send_to(packet, server).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let n = timeout(PATIENCE, socket.recv(&mut buf)).await.expect("an answer in time").expect("recv");
    Message::from_vec(&buf[..n]).expect("a DNS message")
}

async fn ask(server: SocketAddr, name: &str, kind: RecordType) -> Message {
    udp(server, &query(name, kind)).await
}

fn rdata(answer: &Message) -> Vec<String> {
    records(&answer.answers)
}

fn records(records: &[hickory_server::proto::rr::Record]) -> Vec<String> {
    records.iter().map(|r| r.data.to_string()).collect()
}

#[tokio::test]
async fn answers_service_names_over_udp() {
    let (at, _server) = start(CLUSTER_DOMAIN, Upstream::default()).await;
    let a = ask(at, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!((a.metadata.response_code, a.metadata.authoritative), (ResponseCode::NoError, true));
    assert_eq!(rdata(&a), ["127.16.0.20"]);
    assert_eq!(a.answers[0].ttl, server::TTL);
    assert_eq!(a.metadata.id, 4242);

    let headless = ask(at, "pg.db.svc.cluster.local.", RecordType::A).await;
    assert_eq!(rdata(&headless), ["127.64.0.7", "127.64.0.8"]);
    let host = ask(at, "pg-0.pg.db.svc.cluster.local.", RecordType::A).await;
    assert_eq!(rdata(&host), ["127.64.0.7"]);

    let srv = ask(at, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV).await;
    let Some(RData::SRV(record)) = srv.answers.first().map(|r| &r.data) else { panic!("{srv:?}") };
    assert_eq!((record.port, record.target.to_ascii()), (80, "web.default.svc.cluster.local.".into()));
    assert_eq!(records(&srv.additionals), ["127.16.0.20"]);

    let nodata = ask(at, "web.default.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!((nodata.metadata.response_code, nodata.answers.len()), (ResponseCode::NoError, 0));
    assert_eq!(nodata.authorities.first().map(|r| r.record_type()), Some(RecordType::SOA));

    let missing = ask(at, "nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(missing.authorities.first().map(|r| r.record_type()), Some(RecordType::SOA));
}

#[tokio::test]
async fn answers_over_tcp() {
    let (at, _server) = start(CLUSTER_DOMAIN, Upstream::default()).await;
    let packet = query("web.default.svc.cluster.local.", RecordType::A);
    let mut stream = TcpStream::connect(at).await.expect("connect");
    let len = u16::try_from(packet.len()).expect("short");
    stream.write_all(&len.to_be_bytes()).await.expect("write");
    stream.write_all(&packet).await.expect("write");
    let len = timeout(PATIENCE, stream.read_u16()).await.expect("in time").expect("length");
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await.expect("read");
    assert_eq!(rdata(&Message::from_vec(&buf).expect("message")), ["127.16.0.20"]);
}

#[tokio::test]
async fn junk_packets_do_not_stop_the_server() {
    let (at, _server) = start(CLUSTER_DOMAIN, Upstream::default()).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut junk: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0xff; 11], vec![0xff; 512]];
    let valid = query("web.default.svc.cluster.local.", RecordType::A);
    for cut in [12, 13, valid.len() - 1] {
        junk.push(valid[..cut].to_vec());
    }
    let mut lying = valid.clone();
    lying[5] = 40; // claims 40 questions
    junk.push(lying);
    for seed in 0u8..64 {
        junk.push(valid.iter().enumerate().map(|(i, b)| b ^ seed.wrapping_mul(i as u8 | 1)).collect());
    }
    for packet in &junk {
        socket.send_to(packet, at).await.expect("send");
    }
    let answer = ask(at, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(rdata(&answer), ["127.16.0.20"]);
}

#[tokio::test]
async fn other_names_go_upstream_and_external_names_are_followed() {
    let (upstream_at, _upstream) = start("upstream.test", Upstream::default()).await;
    let (at, _server) = start(CLUSTER_DOMAIN, Upstream::new(vec![upstream_at], Duration::from_secs(5))).await;
    let forwarded = ask(at, "web.default.svc.upstream.test.", RecordType::A).await;
    assert_eq!(
        (forwarded.metadata.response_code, rdata(&forwarded)),
        (ResponseCode::NoError, vec!["127.16.0.20".into()])
    );
    assert!(!forwarded.metadata.authoritative);
    let missing = ask(at, "nope.upstream.test.", RecordType::A).await;
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);

    let ext = ask(at, "ext.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(rdata(&ext), ["web.default.svc.upstream.test.", "127.16.0.20"]);
}

#[tokio::test]
async fn no_upstream_answer_is_a_quick_servfail() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let budget = Duration::from_millis(300);
    let upstream = Upstream::new(vec![silent.local_addr().expect("addr")], budget);
    let (at, _server) = start(CLUSTER_DOMAIN, upstream).await;
    let started = Instant::now();
    let answer = ask(at, "example.test.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() < budget + Duration::from_secs(2), "took {:?}", started.elapsed());

    let (at, _server) = start(CLUSTER_DOMAIN, Upstream::default()).await;
    let answer = ask(at, "example.test.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn the_upstream_is_the_hosts_nameservers_but_never_ourselves() {
    let conf = "nameserver 10.0.0.2\nnameserver 127.16.0.10\n";
    let upstream = Upstream::from_resolv_conf(conf, "127.16.0.10".parse().expect("ip"));
    assert_eq!(upstream.servers(), ["10.0.0.2:53".parse::<SocketAddr>().expect("addr")]);
}
