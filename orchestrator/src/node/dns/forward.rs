//! Names outside the cluster domain go to the nameservers of the node's own resolv.conf, as
//! CoreDNS's `forward . /etc/resolv.conf`: the client's query is relayed as it came (UDP, then
//! TCP when the answer is truncated) and the answer is read back. With no nameserver, or none
//! answering within [`UPSTREAM_BUDGET`], the client gets SERVFAIL at once rather than waiting
//! out its own timeout.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use hickory_server::proto::{
    op::{Message, Query},
    rr::{Name, RecordType},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
    time::{Instant, timeout_at},
};

/// How long one forwarded query may take over all nameservers together. A stub resolver
/// waits 5 s before it retries; answering SERVFAIL before that lets it fail fast.
pub const UPSTREAM_BUDGET: Duration = Duration::from_secs(2);

/// Why a forwarded query got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no upstream nameserver is configured")]
    NoUpstream,
    #[error("no upstream nameserver answered within {0:?}")]
    Timeout(Duration),
    #[error("upstream {server}: {source}")]
    Io { server: SocketAddr, source: std::io::Error },
    #[error("building the query: {0}")]
    Encode(String),
}

/// The nameservers queries outside the cluster go to.
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    servers: Vec<SocketAddr>,
    budget: Duration,
}

impl Upstream {
    /// The `nameserver` lines of a resolv.conf, leaving out `own` (the cluster DNS address: a
    /// node whose resolv.conf points at it would otherwise forward to itself forever).
    pub fn from_resolv_conf(text: &str, own: IpAddr) -> Self {
        let servers = super::resolv_conf::parse(text)
            .nameservers
            .into_iter()
            .filter(|ip| *ip != own)
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        Self { servers, budget: UPSTREAM_BUDGET }
    }

    /// Nameservers given directly (tests).
    pub fn new(servers: Vec<SocketAddr>, budget: Duration) -> Self {
        Self { servers, budget }
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Relay `query` (a whole DNS message) and return the first answer with its id.
    pub async fn exchange(&self, query: &[u8]) -> Result<Message, ForwardError> {
        if self.servers.is_empty() {
            return Err(ForwardError::NoUpstream);
        }
        let id = query.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])).unwrap_or(0);
        let deadline = Instant::now() + self.budget;
        let mut last = ForwardError::Timeout(self.budget);
        for server in &self.servers {
            match timeout_at(deadline, exchange_udp(*server, query, id)).await {
                Err(_) => return Err(ForwardError::Timeout(self.budget)),
                Ok(Ok(answer)) if answer.metadata.truncation => {
                    match timeout_at(deadline, exchange_tcp(*server, query, id)).await {
                        Ok(Ok(answer)) => return Ok(answer),
                        Ok(Err(e)) => last = e,
                        Err(_) => return Err(ForwardError::Timeout(self.budget)),
                    }
                }
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => last = e,
            }
        }
        Err(last)
    }

    /// Ask the upstream for `name`'s records of `kind` (to follow an ExternalName's CNAME).
    pub async fn query(&self, name: Name, kind: RecordType) -> Result<Message, ForwardError> {
        let mut message = Message::query();
        message.metadata.id = rand::random();
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(name, kind));
        let bytes = message.to_vec().map_err(|e| ForwardError::Encode(e.to_string()))?;
        self.exchange(&bytes).await
    }
}

async fn exchange_udp(server: SocketAddr, query: &[u8], id: u16) -> Result<Message, ForwardError> {
    let io = |source| ForwardError::Io { server, source };
    let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    socket.connect(server).await.map_err(io)?;
    socket.send(query).await.map_err(io)?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await.map_err(io)?;
        // Anything that is not the answer to this query (a late answer to another, junk) is
        // dropped; the deadline bounds the wait.
        if let Ok(answer) = Message::from_vec(&buf[..n])
            && answer.metadata.id == id
        {
            return Ok(answer);
        }
    }
}

async fn exchange_tcp(server: SocketAddr, query: &[u8], id: u16) -> Result<Message, ForwardError> {
    let io = |source| ForwardError::Io { server, source };
    let bad = |what: &str| io(std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string()));
    let mut stream = TcpStream::connect(server).await.map_err(io)?;
    let len = u16::try_from(query.len()).map_err(|_| bad("query too long"))?;
    stream.write_all(&len.to_be_bytes()).await.map_err(io)?;
    stream.write_all(query).await.map_err(io)?;
    let len = stream.read_u16().await.map_err(io)?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await.map_err(io)?;
    let answer = Message::from_vec(&buf).map_err(|_| bad("not a DNS message"))?;
    if answer.metadata.id != id {
        return Err(bad("answer to another query"));
    }
    Ok(answer)
}
