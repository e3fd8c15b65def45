//! The two booths and the 50 rules, set up over HTTP as a tenant would.

use super::*;

pub(super) async fn booth(api: &Api) -> anyhow::Result<String> {
    let me = api.get("/api/v1/me").await?;
    let admin = me["principal"]["id"].as_i64().context("admin id")?;
    let channel = api
        .post(
            "/api/v1/channels",
            &json!({
                "name": "展台", "scene": "expo",
                "owner_policy": {"type": "fixed", "staff_id": admin},
                "form": [{"key": "phone", "required": true}, {"key": "company"}, {"key": "region"}],
                "privacy_policy_version": POLICY,
            }),
        )
        .await?;
    Ok(channel["qr_scene"].as_str().context("qr_scene")?.to_owned())
}

async fn group_with(api: &Api, name: &str, tags: &[String]) -> anyhow::Result<Vec<(String, i64)>> {
    let group = api
        .post(
            "/api/v1/tag-groups",
            &json!({"name": name, "dimension": "custom"}),
        )
        .await?["id"]
        .as_i64()
        .context("group id")?;
    let mut out = Vec::new();
    for tag in tags {
        let id = api
            .post("/api/v1/tags", &json!({"group_id": group, "name": tag}))
            .await?["id"]
            .as_i64()
            .context("tag id")?;
        out.push((tag.clone(), id));
    }
    Ok(out)
}

/// The 50 rules of `ruled`: every template, and 29 more.
pub(super) async fn fifty_rules(api: &Api) -> anyhow::Result<(HashMap<String, i64>, Vec<i64>)> {
    let mut tags = HashMap::new();
    let mut rules = Vec::new();
    let templates = api.get("/api/v1/rule-templates").await?;
    for template in templates["items"].as_array().context("templates")? {
        let key = template["key"].as_str().context("key")?;
        let made = api
            .post(&format!("/api/v1/rule-templates/{key}"), &json!({}))
            .await?;
        for tag in made["tags"].as_array().context("tags")? {
            tags.insert(
                tag["name"].as_str().context("name")?.to_owned(),
                tag["tag_id"].as_i64().context("id")?,
            );
        }
        for rule in made["rules"].as_array().context("rules")? {
            rules.push(rule["id"].as_i64().context("rule id")?);
        }
    }
    let add = |name: String, condition: Value, tag: i64| json!({"name": name, "condition": condition, "actions": [{"type": "add_tag", "tag_id": tag}]});
    let mut drafts = Vec::new();
    let regions: Vec<String> = REGIONS.iter().map(|r| format!("地区·{r}")).collect();
    for ((name, id), region) in group_with(api, "地区", &regions)
        .await?
        .into_iter()
        .zip(REGIONS)
    {
        drafts.push(add(
            name.clone(),
            json!({"field": "region", "op": "eq", "value": region}),
            id,
        ));
        tags.insert(name, id);
    }
    let bought: Vec<String> = CATEGORIES.iter().map(|c| format!("买过·{c}")).collect();
    for ((name, id), category) in group_with(api, "品类", &bought)
        .await?
        .into_iter()
        .zip(CATEGORIES)
    {
        drafts.push(add(
            name.clone(),
            json!({"metric": {"aggregate": "count", "of": "orders", "where": {"product_category": category}}, "op": "gte", "value": 1}),
            id,
        ));
        tags.insert(name, id);
    }
    let views: Vec<String> = (1..=5).map(|k| format!("浏览≥{k}")).collect();
    for (k, (name, id)) in group_with(api, "浏览", &views)
        .await?
        .into_iter()
        .enumerate()
    {
        drafts.push(add(
            name.clone(),
            json!({"metric": {"aggregate": "count", "of": "events", "within": {"last_days": 30}, "where": {"kind": "page_view"}}, "op": "gte", "value": k + 1}),
            id,
        ));
        tags.insert(name, id);
    }
    let vip: Vec<String> = ["上海高价值", "有公司", "成熟大客户", "沉默高价值"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let made = group_with(api, "组合", &vip).await?;
    let high = *tags.get("高价值客户").context("高价值客户")?;
    let conditions = [
        json!({"all": [{"has_tag": high}, {"field": "region", "op": "eq", "value": "上海"}]}),
        json!({"field": "company", "op": "is_set"}),
        json!({"all": [{"has_tag": high}, {"has_tag": *tags.get("成熟期").context("成熟期")?}]}),
        json!({"all": [{"has_tag": high}, {"has_tag": *tags.get("沉默").context("沉默")?}]}),
    ];
    for ((name, id), condition) in made.into_iter().zip(conditions) {
        drafts.push(add(name.clone(), condition, id));
        tags.insert(name, id);
    }
    for draft in drafts {
        let rule = api.post("/api/v1/rules", &draft).await?;
        rules.push(rule["id"].as_i64().context("rule id")?);
    }
    if rules.len() != 50 {
        bail!("expected 50 rules, made {}", rules.len());
    }
    Ok((tags, rules))
}
