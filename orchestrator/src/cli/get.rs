//! `wasmkube get`: the same shapes kubectl prints — server-side tables (with `-o wide`, `-A`),
//! or whole objects as YAML/JSON, or `kind/name` lines.

use anyhow::anyhow;
use orchestrator::{
    api::{ResourceType, resources, yaml},
    client::{Client, encode},
};
use serde_json::{Value, json};

use super::config::ClientOptions;

/// Show objects.
#[derive(clap::Args)]
pub struct GetCommand {
    /// Resource type (pods, po, deployments, deploy, nodes, ...), or TYPE/NAME.
    resource: String,
    /// Object names (all when omitted).
    names: Vec<String>,
    /// Output format: wide, yaml, json or name (default: a table).
    #[arg(short = 'o', long)]
    output: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Label selector, e.g. app=web.
    #[arg(short = 'l', long)]
    selector: Option<String>,
    #[command(flatten)]
    client: ClientOptions,
}

/// Resolve `pods`, `po` or `deploy/name` into a type and the names it carries.
pub fn resolve(resource: &str) -> anyhow::Result<(&'static ResourceType, Vec<String>)> {
    let (kind, names) = match resource.split_once('/') {
        Some((k, n)) => (k, vec![n.to_string()]),
        None => (resource, Vec::new()),
    };
    let rt = resources::find_by_cli_name(kind)
        .ok_or_else(|| anyhow!("the server doesn't have a resource type \"{kind}\""))?;
    Ok((rt, names))
}

impl GetCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        let conn = self.client.connect()?;
        let (rt, mut names) = resolve(&self.resource)?;
        names.extend(self.names.iter().cloned());
        let ns = if self.all_namespaces { None } else { Some(conn.namespace.as_str()) };
        let output = self.output.as_deref().unwrap_or("");
        match output {
            "" | "wide" => {
                let tables = fetch(&conn.client, rt, ns, &names, self.selector.as_deref(), true).await?;
                print_table(&tables, output == "wide", self.all_namespaces && rt.namespaced, rt);
            }
            "yaml" | "json" | "name" => {
                let objects = fetch(&conn.client, rt, ns, &names, self.selector.as_deref(), false).await?;
                let mut items: Vec<Value> = Vec::new();
                for o in objects {
                    match o["items"].as_array() {
                        Some(list) => items.extend(list.iter().map(|i| with_kind(rt, i))),
                        None => items.push(o),
                    }
                }
                let single = names.len() == 1;
                if output == "name" {
                    for i in &items {
                        println!(
                            "{}/{}",
                            rt.qualified().replace(rt.plural, rt.singular),
                            i["metadata"]["name"].as_str().unwrap_or("")
                        );
                    }
                    return Ok(());
                }
                let value = if single && items.len() == 1 {
                    items.remove(0)
                } else {
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
                };
                if output == "json" {
                    println!("{}", serde_json::to_string_pretty(&value)?);
                } else {
                    print!("{}", yaml::to_string(&value));
                }
            }
            other => {
                return Err(anyhow!(
                    "unable to match a printer suitable for the output format \"{other}\", allowed formats are: json,name,wide,yaml"
                ));
            }
        }
        Ok(())
    }
}

fn with_kind(rt: &ResourceType, item: &Value) -> Value {
    let mut i = item.clone();
    i["apiVersion"] = json!(rt.api_version());
    i["kind"] = json!(rt.kind);
    i
}

async fn fetch(
    client: &Client,
    rt: &ResourceType,
    ns: Option<&str>,
    names: &[String],
    selector: Option<&str>,
    table: bool,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    if names.is_empty() {
        let mut path = Client::path(rt, ns, None, None);
        if let Some(s) = selector {
            path.push_str(&format!("?labelSelector={}", encode(s)));
        }
        out.push(if table {
            client.get_table(&path).await?
        } else {
            client.request(reqwest::Method::GET, &path, None, None).await?
        });
    } else {
        for n in names {
            let path = Client::path(rt, ns, Some(n), None);
            out.push(if table {
                client.get_table(&path).await?
            } else {
                client.request(reqwest::Method::GET, &path, None, None).await?
            });
        }
    }
    Ok(out)
}

fn print_table(tables: &[Value], wide: bool, with_namespace: bool, rt: &ResourceType) {
    let Some(first) = tables.first() else { return };
    let columns: Vec<(usize, String)> = first["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| wide || c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, c)| (i, c["name"].as_str().unwrap_or("").to_uppercase()))
        .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<String> = columns.iter().map(|(_, n)| n.clone()).collect();
    if with_namespace {
        header.insert(0, "NAMESPACE".into());
    }
    for t in tables {
        for row in t["rows"].as_array().into_iter().flatten() {
            let cells = row["cells"].as_array().cloned().unwrap_or_default();
            let mut line: Vec<String> =
                columns.iter().map(|(i, _)| cells.get(*i).map(cell).unwrap_or_default()).collect();
            if with_namespace {
                line.insert(0, row["object"]["metadata"]["namespace"].as_str().unwrap_or("").to_string());
            }
            rows.push(line);
        }
    }
    if rows.is_empty() {
        eprintln!(
            "No resources found{}.",
            if rt.namespaced && !with_namespace { " in this namespace" } else { "" }
        );
        return;
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(&header)
                .chain(rows.iter())
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| if i + 1 == r.len() { c.clone() } else { format!("{c:<w$}", w = widths[i]) })
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}
