//! Tag-filtered lists and batch tagging: the filter every list and batch shares, the cached
//! search with its keyset pages, and tagging many customers at once.

use super::*;

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
const X_SEARCH_PATH: HeaderName = HeaderName::from_static("x-search-path");

/// Which customers to list. Every part is optional; all given parts must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"all_of": [7, 9], "none_of": [12], "project_stage": "方案沟通中"}))]
pub struct FilterRequest {
    /// Customers carrying every one of these tags (at most 20).
    #[serde(default)]
    pub all_of: Vec<i64>,
    /// Customers carrying at least one of these tags (at most 20).
    #[serde(default)]
    pub any_of: Vec<i64>,
    /// Customers carrying none of these tags (at most 20).
    #[serde(default)]
    pub none_of: Vec<i64>,
    pub owner_id: Option<i64>,
    pub source_channel_id: Option<i64>,
    pub project_stage: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub updated_from: Option<DateTime<Utc>>,
    pub updated_to: Option<DateTime<Utc>>,
    /// Custom field equality by key (for a multi-select: carries the option).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    /// Substring of the name or company, or the last digits of the phone number.
    pub keyword: Option<String>,
}

impl FilterRequest {
    pub(crate) fn to_filter(&self) -> Filter {
        let tags = |ids: &[i64]| ids.iter().map(|&id| TagId(id)).collect();
        Filter {
            all_of: tags(&self.all_of),
            any_of: tags(&self.any_of),
            none_of: tags(&self.none_of),
            owner_id: self.owner_id.map(StaffId),
            source_channel_id: self.source_channel_id,
            project_stage: self.project_stage.clone(),
            created_from: self.created_from,
            created_to: self.created_to,
            updated_from: self.updated_from,
            updated_to: self.updated_to,
            custom_fields: self.custom_fields.clone(),
            keyword: self.keyword.clone(),
        }
    }
}

/// A filter plus paging, all in one flat object.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"all_of": [7, 9], "none_of": [12], "limit": 50}))]
pub struct SearchRequest {
    #[serde(flatten)]
    pub filter: FilterRequest,
    /// Page size, 1–200 (default 50).
    #[schema(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The raw search body. The paging keys are taken out before the rest is read as a
/// [`FilterRequest`], so field errors keep their paths (serde loses them through `flatten`).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct SearchBody(Map<String, Value>);

impl Validate for SearchBody {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        Ok(())
    }
}

impl TryFrom<SearchBody> for SearchRequest {
    type Error = ApiError;

    fn try_from(body: SearchBody) -> Result<Self, ApiError> {
        let mut rest = body.0;
        let mut errors = Vec::new();
        let limit = match rest.remove("limit") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_u64() {
                Some(limit) if (1..=search::PAGE_MAX).contains(&limit) => Some(limit),
                Some(_) => {
                    errors.push(FieldError::new(
                        "limit",
                        "range",
                        format!("must be between 1 and {}", search::PAGE_MAX),
                    ));
                    None
                }
                None => {
                    errors.push(FieldError::new(
                        "limit",
                        "invalid_type",
                        "must be an integer",
                    ));
                    None
                }
            },
        };
        let cursor = match rest.remove("cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(cursor)) => Some(cursor),
            Some(_) => {
                errors.push(FieldError::new(
                    "cursor",
                    "invalid_type",
                    "must be a string",
                ));
                None
            }
        };
        let filter = from_value(Value::Object(rest))
            .map_err(|err| errors.extend(err.errors().iter().cloned()))
            .ok();
        match filter {
            Some(filter) if errors.is_empty() => Ok(SearchRequest {
                filter,
                limit,
                cursor,
            }),
            _ => Err(ApiError::validation(errors)),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Exact number of matching customers, independent of the page.
    pub total: u64,
    /// Newest first.
    pub items: Vec<CustomerView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "batch_is_well_formed"))]
#[schema(example = json!({"add": [7], "remove": [12], "customer_ids": [1024, 1025], "note": "展会后统一标记"}))]
pub struct BatchTagsRequest {
    /// Tags to add (at most 20).
    #[serde(default)]
    #[validate(length(max = 20))]
    #[schema(max_items = 20)]
    pub add: Vec<i64>,
    /// Tags to remove (at most 20).
    #[serde(default)]
    #[validate(length(max = 20))]
    #[schema(max_items = 20)]
    pub remove: Vec<i64>,
    /// The customers to change (1–1000); exactly one of `customer_ids` and `filter`.
    #[validate(length(min = 1, max = 1000))]
    #[schema(min_items = 1, max_items = 1000)]
    pub customer_ids: Option<Vec<i64>>,
    /// Every customer matching this filter (at most 10,000).
    pub filter: Option<FilterRequest>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub note: Option<String>,
}

fn batch_is_well_formed(r: &BatchTagsRequest) -> Result<(), ValidationError> {
    let fail = |code: &'static str, message: &'static str| {
        let mut err = ValidationError::new(code);
        err.message = Some(message.into());
        Err(err)
    };
    if r.customer_ids.is_some() == r.filter.is_some() {
        return fail("target", "give exactly one of customer_ids and filter");
    }
    if r.add.is_empty() && r.remove.is_empty() {
        return fail("empty", "give tags to add or remove");
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"matched": 120, "added": 118, "removed": 30}))]
pub struct BatchTagsResponse {
    /// Customers the request applied to.
    pub matched: u64,
    /// Tag links created.
    pub added: u64,
    /// Tag links removed.
    pub removed: u64,
}

/// Add and remove tags on many customers at once: an explicit list of ids, or every customer
/// matching a filter. All or nothing: if anything is invalid, nothing changes.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    request_body = BatchTagsRequest,
    responses(
        (status = 200, description = "What changed", body = BatchTagsResponse),
        (status = 422, description = "Invalid request, unknown customers or tags (`validation_failed`), archived tags (`tag_archived`), or a filter matching over 10,000 customers (`too_many_customers`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/customers/batch-tags")]
pub async fn batch_tags(
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<BatchTagsRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner()?;
    let target = match (r.customer_ids, r.filter) {
        (Some(ids), _) => BatchTarget::Ids(ids.into_iter().map(CustomerId).collect()),
        (None, Some(filter)) => BatchTarget::Filter(Box::new(filter.to_filter())),
        (None, None) => {
            return Err(ApiError::field(
                "body",
                "target",
                "give customer_ids or filter",
            ));
        }
    };
    let outcome = Customers::new(&state.db, &caller.actor())
        .batch_tags(BatchTagging {
            add: r.add.into_iter().map(TagId).collect(),
            remove: r.remove.into_iter().map(TagId).collect(),
            target,
            note: r.note,
        })
        .await?;
    Ok(HttpResponse::Ok().json(BatchTagsResponse {
        matched: outcome.matched,
        added: outcome.added,
        removed: outcome.removed,
    }))
}

/// Customers matching tag operators and field filters: the exact total and one page.
///
/// Pages are newest first with an opaque keyset cursor. Answers are cached until the tenant's
/// data changes (a change is visible to the very next request); send `Cache-Control: no-cache`
/// to bypass the cache. The `X-Cache` response header says `hit`, `miss` or `bypass`; on a miss
/// or a bypass `X-Search-Path` says whether the tenant's bitmap index or SQL computed the answer
/// (SQL answers while the index is built, in the background, on the tenant's first list).
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    request_body = SearchRequest,
    responses(
        (status = 200, description = "The total and a page", body = SearchResponse,
         headers(
             ("X-Cache" = String, description = "hit, miss or bypass"),
             ("X-Search-Path" = String, description = "On an answer not from the cache: `index` (the tenant's bitmap index, current with every committed change) or `sql` (while the index is being built, or with it turned off). Both give the same answer.")
         )),
        (status = 422, description = "Invalid filter: unknown or foreign tags (`unknown_tag`), contradictions, ranges, limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/customers/search")]
pub async fn search_customers(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: StaffCaller,
    body: ValidJson<SearchBody>,
) -> Result<HttpResponse, ApiError> {
    let r = SearchRequest::try_from(body.into_inner()?)?;
    let bypass = req
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-cache") || v.contains("no-store"));
    let answer = app::search::search(&state, &caller.actor(), &r, bypass).await?;
    let mut response = json_bytes(answer.body, answer.cache.as_str());
    if let Some(path) = answer.path {
        response
            .headers_mut()
            .insert(X_SEARCH_PATH, HeaderValue::from_static(path.as_str()));
    }
    Ok(response)
}

fn json_bytes(body: Vec<u8>, cache: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((X_CACHE, HeaderValue::from_static(cache)))
        .body(body)
}
