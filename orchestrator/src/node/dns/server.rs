//! The DNS protocol side: a hickory `RequestHandler` that answers names of the cluster domain
//! from the [`Directory`] (authoritative, TTL [`TTL`] seconds, as CoreDNS's kubernetes
//! plugin) and relays every other name to the node's upstream nameservers. Parsing and
//! encoding are hickory's; a packet it cannot parse never reaches us (it answers FORMERR).

use std::net::IpAddr;

use hickory_server::{
    net::runtime::Time,
    proto::{
        op::{Edns, Header, HeaderCounts, LowerQuery, Message, Metadata, OpCode, ResponseCode},
        rr::{
            Name, RData, Record, RecordType,
            rdata::{A, AAAA, CNAME, SOA, SRV},
        },
    },
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::MessageResponseBuilder,
};
use tracing::{debug, warn};

use super::{
    directory::{Directory, Entry, Found, SharedDirectory, Srv, canonical},
    forward::Upstream,
};

/// Seconds clients may cache an answer (CoreDNS's default for cluster names).
pub const TTL: u32 = 5;

/// Answers queries from the directory, or through the upstream nameservers.
pub struct Handler {
    pub directory: SharedDirectory,
    pub upstream: Upstream,
}

/// A response's sections.
#[derive(Default)]
struct Sections {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let sections = self.sections(request).await;
        let edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().max(512));
            edns
        });
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        metadata.authoritative = sections.authoritative;
        metadata.response_code = sections.code;
        let response = builder.build(
            metadata,
            sections.answers.iter(),
            sections.authorities.iter(),
            [].iter(),
            sections.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                warn!(error = %e, "sending a DNS response failed");
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
            }
        }
    }
}

impl Handler {
    async fn sections(&self, request: &Request) -> Sections {
        let queries = request.queries.queries();
        let query = match (request.metadata.op_code, queries) {
            (OpCode::Query, [query]) => query,
            (OpCode::Query, _) => return Sections { code: ResponseCode::FormErr, ..Sections::default() },
            _ => return Sections { code: ResponseCode::NotImp, ..Sections::default() },
        };
        let directory = self.directory.current();
        let name = canonical(&query.name().to_string());
        match directory.find(&name) {
            Found::Outside => self.forward(request.as_slice(), &name).await,
            Found::Missing => Sections {
                code: ResponseCode::NXDomain,
                authoritative: true,
                authorities: soa(&directory).into_iter().collect(),
                ..Sections::default()
            },
            Found::Name { entry, srv } => self.records(&directory, query, entry, srv).await,
        }
    }

    /// The records of a name of ours for the query's type; NODATA (with the SOA) when none.
    async fn records(
        &self,
        directory: &Directory,
        query: &LowerQuery,
        entry: Option<&Entry>,
        srv: &[Srv],
    ) -> Sections {
        let owner = query.original().name().clone();
        let kind = query.query_type();
        let mut out = Sections { authoritative: true, ..Sections::default() };
        match (entry, kind) {
            (Some(Entry::Alias(target)), _) if kind != RecordType::CNAME => {
                if let Ok(target) = Name::from_ascii(format!("{target}.")) {
                    out.answers.push(Record::from_rdata(owner, TTL, RData::CNAME(CNAME(target.clone()))));
                    out.answers.extend(self.follow(directory, target, kind).await);
                }
            }
            (Some(Entry::Alias(target)), _) => {
                if let Ok(target) = Name::from_ascii(format!("{target}.")) {
                    out.answers.push(Record::from_rdata(owner, TTL, RData::CNAME(CNAME(target))));
                }
            }
            (Some(Entry::Addresses(ips)), RecordType::A | RecordType::AAAA | RecordType::ANY) => {
                out.answers.extend(address_records(&owner, ips, kind));
            }
            (_, RecordType::SRV | RecordType::ANY) => {
                for record in srv {
                    let Ok(target) = Name::from_ascii(format!("{}.", record.target)) else { continue };
                    if let Found::Name { entry: Some(Entry::Addresses(ips)), .. } =
                        directory.find(&record.target)
                    {
                        out.additionals.extend(address_records(&target, ips, RecordType::ANY));
                    }
                    let weight = u16::try_from(100 / srv.len().max(1)).unwrap_or(100);
                    let data = RData::SRV(SRV::new(0, weight, record.port, target));
                    out.answers.push(Record::from_rdata(owner.clone(), TTL, data));
                }
            }
            _ => {}
        }
        if out.answers.is_empty() {
            out.authorities.extend(soa(directory));
        }
        out
    }

    /// The target of a CNAME: from the directory when it is ours, else from upstream (as
    /// CoreDNS does for ExternalName, since stub resolvers do not chase CNAMEs themselves).
    async fn follow(&self, directory: &Directory, target: Name, kind: RecordType) -> Vec<Record> {
        let canonical_target = canonical(&target.to_ascii());
        match directory.find(&canonical_target) {
            Found::Name { entry: Some(Entry::Addresses(ips)), .. } => address_records(&target, ips, kind),
            Found::Outside if matches!(kind, RecordType::A | RecordType::AAAA) => {
                match self.upstream.query(target, kind).await {
                    Ok(answer) => answer.answers,
                    Err(e) => {
                        debug!(target = %canonical_target, error = %e, "following an ExternalName failed");
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        }
    }

    async fn forward(&self, query: &[u8], name: &str) -> Sections {
        match self.upstream.exchange(query).await {
            Ok(answer) => from_upstream(answer),
            Err(e) => {
                debug!(name, error = %e, "forwarding failed: SERVFAIL");
                Sections { code: ResponseCode::ServFail, ..Sections::default() }
            }
        }
    }
}

fn from_upstream(answer: Message) -> Sections {
    Sections {
        code: answer.metadata.response_code,
        authoritative: false,
        answers: answer.answers,
        authorities: answer.authorities,
        additionals: answer.additionals,
    }
}

fn address_records(owner: &Name, ips: &[IpAddr], kind: RecordType) -> Vec<Record> {
    ips.iter()
        .filter_map(|ip| match (ip, kind) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(*v6))),
            _ => None,
        })
        .map(|data| Record::from_rdata(owner.clone(), TTL, data))
        .collect()
}

/// The zone's SOA, for negative answers (its minimum is how long a client caches them).
fn soa(directory: &Directory) -> Option<Record> {
    let zone = Name::from_ascii(format!("{}.", directory.domain())).ok()?;
    let mname = Name::from_ascii(format!("ns.dns.{}.", directory.domain())).ok()?;
    let rname = Name::from_ascii(format!("hostmaster.{}.", directory.domain())).ok()?;
    let data = SOA::new(mname, rname, 1, 7200, 1800, 86400, TTL);
    Some(Record::from_rdata(zone, TTL, RData::SOA(data)))
}
