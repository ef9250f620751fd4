// hydrascope investigator queries for Neo4j (graph model: exporters/neo4j/model.py, docs/neo4j.md).
//
// Each query starts with a header:
//   // name: <name>                 how exporters.neo4j.queries finds it
//   // params: {"p": default, ...}  its parameters (JSON); null means "optional"
//   // <description lines>
// In Neo4j Browser set parameters first, e.g.  :param account_id => 'acct-0042'
// "Latest run" means the completely exported :Run with the greatest run_order
// (window end, then run id); pass $run_id to look at an earlier run instead.

// name: top_flagged_clusters
// params: {"run_id": null, "limit": 25}
// The flagged clusters of a run (default: the latest), strongest first, with their reasons.
MATCH (run:Run)
WHERE run.complete AND ($run_id IS NULL OR run.run_id = $run_id)
WITH run ORDER BY run.run_order DESC LIMIT 1
MATCH (c:Cluster)-[:IN_RUN]->(run)
WHERE c.flagged
RETURN c.cluster_id AS cluster_id, c.score AS score, c.n_accounts AS n_accounts,
       c.reasons AS reasons, run.run_id AS run_id
ORDER BY score DESC, cluster_id
LIMIT $limit;

// name: accounts_sharing_instrument
// params: {"account_id": null}
// Every other account that paid with a payment instrument the given account used, with the
// shared instruments (sorted) and their types.
MATCH (a:Account {account_id: $account_id})-[:PAID_WITH]->(p:PaymentInstrument)<-[:PAID_WITH]-(other:Account)
WHERE other <> a
WITH other, p ORDER BY p.instrument_id
RETURN other.account_id AS account_id, collect(p.instrument_id) AS instruments,
       collect(coalesce(p.type, '')) AS instrument_types
ORDER BY account_id;

// name: shortest_path
// params: {"account_a": null, "account_b": null, "max_hops": 8}
// The shortest chain of evidence between two accounts: account-account links of any layer and
// shared IPs, prefixes, instruments, templates and user agents, avoiding hub identifiers (too
// common to be evidence). Cluster and run nodes are not used. Returns no row when there is none.
MATCH (a:Account {account_id: $account_a}), (b:Account {account_id: $account_b})
MATCH p = shortestPath((a)-[:LINKED|USED_IP|IN_PREFIX|PAID_WITH|USED_TEMPLATE|USED_USER_AGENT*..20]-(b))
WHERE length(p) <= $max_hops AND all(n IN nodes(p) WHERE NOT coalesce(n.is_hub, false))
RETURN length(p) AS hops,
       [n IN nodes(p) | labels(n)[0]] AS labels,
       [n IN nodes(p) | coalesce(n.account_id, n.address, n.prefix, n.instrument_id, n.template_id, n.user_agent)] AS ids,
       [r IN relationships(p) | type(r) + coalesce(':' + r.layer, '')] AS relationships;

// name: cluster_templates
// params: {"cluster_id": null, "run_id": null}
// The prompt templates the members of a cluster used (default run: the latest), most shared first;
// n_prompts sums the members' use counts as last exported.
MATCH (run:Run)
WHERE run.complete AND ($run_id IS NULL OR run.run_id = $run_id)
WITH run ORDER BY run.run_order DESC LIMIT 1
MATCH (c:Cluster {key: run.run_id + '/' + $cluster_id})
MATCH (c)<-[:MEMBER_OF]-(a:Account)-[u:USED_TEMPLATE]->(t:PromptTemplate)
RETURN t.template_id AS template_id, t.skeleton AS skeleton, count(DISTINCT a) AS n_accounts,
       sum(u.n_events) AS n_prompts, t.is_hub AS is_hub
ORDER BY n_accounts DESC, template_id;

// name: new_clusters_in_latest_run
// params: {}
// Clusters of the latest run that are new: lineage status `new` (runs made with --previous), or,
// without lineage, none of whose members was in a cluster of an earlier exported run.
MATCH (run:Run)
WHERE run.complete
WITH run ORDER BY run.run_order DESC LIMIT 1
MATCH (c:Cluster)-[:IN_RUN]->(run)
WHERE c.status = 'new'
   OR (c.status IS NULL AND NOT EXISTS {
         MATCH (c)<-[:MEMBER_OF]-(:Account)-[:MEMBER_OF]->(:Cluster)-[:IN_RUN]->(older:Run)
         WHERE older.complete AND older.run_order < run.run_order })
RETURN c.cluster_id AS cluster_id, c.score AS score, c.flagged AS flagged, c.n_accounts AS n_accounts,
       c.reasons AS reasons, run.run_id AS run_id
ORDER BY score DESC, cluster_id;

// name: account_history
// params: {"account_id": null}
// The clusters an account was placed in, run by run (oldest run first).
MATCH (a:Account {account_id: $account_id})-[m:MEMBER_OF]->(c:Cluster)-[:IN_RUN]->(run:Run)
WHERE run.complete
RETURN run.run_id AS run_id, run.name AS run_name, run.until AS until, c.cluster_id AS cluster_id,
       m.score AS score, c.flagged AS flagged, c.reasons AS reasons
ORDER BY run.run_order;
