//! TagResource, UntagResource, ListResourceTags.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{check_limit, empty, reply, Ctx, PageEnd, Request};
use crate::error::AwsError;

/// A tag as AWS spells it.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    tag_key: String,
    tag_value: String,
}

/// Tags as a map; a key given twice is refused (as AWS does).
pub fn tags_to_map(tags: Vec<Tag>) -> Result<BTreeMap<String, String>, AwsError> {
    let mut map = BTreeMap::new();
    for t in tags {
        if map.insert(t.tag_key.clone(), t.tag_value).is_some() {
            return Err(AwsError::bad_request(
                "TagException",
                format!("tag key {:?} appears more than once", t.tag_key),
            ));
        }
    }
    Ok(map)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResource {
    key_id: String,
    tags: Vec<Tag>,
}

/// TagResource.
pub async fn tag_resource(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: TagResource = body.parse()?;
    let key = ctx.key(&req.key_id)?;
    ctx.service
        .tag_key(ctx.caller, &key, tags_to_map(req.tags)?)
        .await?;
    empty()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UntagResource {
    key_id: String,
    tag_keys: Vec<String>,
}

/// UntagResource.
pub async fn untag_resource(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: UntagResource = body.parse()?;
    let key = ctx.key(&req.key_id)?;
    ctx.service
        .untag_key(ctx.caller, &key, req.tag_keys)
        .await?;
    empty()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResourceTags {
    key_id: String,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListResourceTagsResponse {
    tags: Vec<Tag>,
    #[serde(flatten)]
    page_end: PageEnd,
}

/// ListResourceTags (paged by tag key).
pub async fn list_resource_tags(ctx: &Ctx<'_>, body: Request) -> Result<Vec<u8>, AwsError> {
    let req: ListResourceTags = body.parse()?;
    let limit = check_limit(req.limit, 50)?.unwrap_or(50) as usize;
    let tags = ctx
        .service
        .list_resource_tags(ctx.caller, &ctx.key(&req.key_id)?)
        .await?;
    let tags = &tags;
    if let Some(m) = &req.marker {
        if !tags.contains_key(m) {
            return Err(AwsError::bad_request(
                "InvalidMarkerException",
                format!("marker {m:?} is not valid"),
            ));
        }
    }
    let rest: Vec<(&String, &String)> = match &req.marker {
        Some(m) => tags
            .range::<String, _>((std::ops::Bound::Excluded(m), std::ops::Bound::Unbounded))
            .collect(),
        None => tags.iter().collect(),
    };
    let truncated = rest.len() > limit;
    let page: Vec<Tag> = rest
        .iter()
        .take(limit)
        .map(|(k, v)| Tag {
            tag_key: (*k).clone(),
            tag_value: (*v).clone(),
        })
        .collect();
    let next_marker = truncated.then(|| page[limit - 1].tag_key.clone());
    reply(&ListResourceTagsResponse {
        tags: page,
        page_end: PageEnd::at(next_marker),
    })
}
