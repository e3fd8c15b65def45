// Plays the visitor side of the scantag mini-program against a live server: wx.login at the
// WeChat mock, log in, fetch the capture form of a scene, fill it in and submit it.

import { randomBytes, randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import createClient from "openapi-fetch";
import { fillForm, type CaptureRequest, type Filled } from "./form.js";
import type { components, paths } from "./schema.js";
import { mintLoginCode, mintPhoneCode } from "./wechat.js";

type CaptureResult = components["schemas"]["CaptureResultView"];
type Problem = components["schemas"]["Problem"];

const USAGE = `usage: node dist/main.js --scene SCENE [options]

  --scene S               scene of the channel's mini-program code, e.g. 1.expo2026 (required)
  --api URL               scantag server (default http://127.0.0.1:8080)
  --mock URL              WeChat mock (default http://127.0.0.1:8090)
  --openid ID             visitor's openid (default: random o-sim-<hex>)
  --unionid ID            visitor's unionid (default: none)
  --name N, --phone P, --company C
                          values to submit instead of generated ones
  --phone-code            submit the phone as a verified getPhoneNumber code
  --idempotency-key K     Idempotency-Key header (default: a random UUID)
  --repeat N              submit the same request N times with the same key (default 1)
  --json                  print the result as one JSON object on the last line`;

const OPTIONS = {
  scene: { type: "string" },
  api: { type: "string", default: "http://127.0.0.1:8080" },
  mock: { type: "string", default: "http://127.0.0.1:8090" },
  openid: { type: "string", default: `o-sim-${randomBytes(6).toString("hex")}` },
  unionid: { type: "string" },
  name: { type: "string" },
  phone: { type: "string" },
  company: { type: "string" },
  "phone-code": { type: "boolean", default: false },
  "idempotency-key": { type: "string", default: randomUUID() },
  repeat: { type: "string", default: "1" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

function usage(problem?: string): never {
  if (problem === undefined) console.log(USAGE);
  else console.error(`error: ${problem}\n\n${USAGE}`);
  process.exit(problem === undefined ? 0 : 2);
}

function parse() {
  try {
    return parseArgs({ options: OPTIONS }).values;
  } catch (err) {
    usage(err instanceof Error ? err.message : String(err));
  }
}

function options() {
  const values = parse();
  const repeat = Number(values.repeat);
  if (values.help) usage();
  if (!values.scene) usage("--scene is required");
  if (!Number.isInteger(repeat) || repeat < 1) usage("--repeat must be a whole number, 1 or more");
  return { ...values, scene: values.scene, repeat };
}

// fetch only says "fetch failed"; name the server and the cause (ECONNREFUSED, ...) instead.
async function reach<T>(what: string, base: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    const cause: unknown = err.cause;
    const why =
      cause instanceof Error ? ("code" in cause ? String(cause.code) : cause.message) : err.message;
    throw new Error(`cannot reach ${what} at ${base}: ${why}`);
  }
}

function isProblem(body: unknown): body is Problem {
  return typeof body === "object" && body !== null && "status" in body && "code" in body;
}

/** The error for a non-2xx answer, with the problem document as the server sent it. */
function failure(step: string, response: Response, body: unknown): Error {
  if (!isProblem(body)) {
    return new Error(`${step}: HTTP ${response.status} ${JSON.stringify(body) ?? ""}`);
  }
  const lines = [`${step}: ${body.status} ${body.code}: ${body.detail}`];
  for (const e of body.errors ?? []) lines.push(`  ${e.field}: ${e.code} (${e.message})`);
  if (body.request_id) lines.push(`  request_id ${body.request_id}`);
  return new Error(lines.join("\n"));
}

async function main(): Promise<void> {
  const opts = options();
  const say = opts.json ? () => {} : (line: string) => console.log(line);
  const api = createClient<paths>({ baseUrl: opts.api });
  const toApi = <T>(call: () => Promise<T>) => reach("scantag", opts.api, call);
  const toMock = <T>(call: () => Promise<T>) => reach("the WeChat mock", opts.mock, call);

  // 1. wx.login(): the mini-program gets a single-use code from WeChat.
  const wx = await toMock(() => mintLoginCode(opts.mock, opts.openid, opts.unionid));
  say(`wx.login     openid ${wx.openid}${wx.unionid ? `, unionid ${wx.unionid}` : ""}`);

  // 2. Exchange it for a session; an openid that is not staff gets a visitor session.
  const login = await toApi(() =>
    api.POST("/api/v1/auth/wechat/login", { body: { code: wx.code } }),
  );
  if (login.error !== undefined || login.data === undefined) {
    throw failure("login", login.response, login.error);
  }
  const { principal, access_token } = login.data;
  if (principal.kind !== "visitor") {
    const who = `${principal.kind} #${principal.id}`;
    throw new Error(`login: ${wx.openid} is ${who}; only visitors submit captures`);
  }
  say(`login        visitor #${principal.id}`);

  // 3. The form of the scanned code; no token, like the page before the visitor logs in.
  const got = await toApi(() =>
    api.GET("/api/v1/capture/form", { params: { query: { scene: opts.scene } } }),
  );
  if (got.error !== undefined || got.data === undefined) {
    throw failure("form", got.response, got.error);
  }
  const form = got.data;
  const policy = form.privacy_policy.version;
  say(`form         ${form.tenant_name} / ${form.channel_name}  (privacy policy ${policy})`);

  // 4. Fill every field; a phone code is minted at the mock as getPhoneNumber would.
  const { body: filledBody, filled } = await fillForm(form, opts.scene, {
    name: opts.name,
    phone: opts.phone,
    company: opts.company,
    phoneCode: opts["phone-code"]
      ? async (phone) => (await toMock(() => mintPhoneCode(opts.mock, phone))).code
      : undefined,
  });
  filled.forEach((f) => say(describe(f)));
  const body: CaptureRequest = {
    ...filledBody,
    consent: { accepted: true, policy_version: policy },
  };

  // 5. Submit, N times with one Idempotency-Key: later answers should be replays of the first.
  const results: CaptureResult[] = [];
  const replayed: boolean[] = [];
  for (let i = 1; i <= opts.repeat; i++) {
    const sent = await toApi(() =>
      api.POST("/api/v1/capture", {
        params: { header: { "Idempotency-Key": opts["idempotency-key"] } },
        headers: { Authorization: `Bearer ${access_token}` },
        body,
      }),
    );
    if (sent.error !== undefined || sent.data === undefined) {
      throw failure("capture", sent.response, sent.error);
    }
    // 201 = a new customer, 200 = merged into an existing one; a replay repeats the first.
    const { status, headers } = sent.response;
    const replay = headers.get("Idempotency-Replayed") === "true";
    const { outcome, capture_id } = sent.data;
    results.push(sent.data);
    replayed.push(replay);
    say(
      `submit ${i}/${opts.repeat}   ${status} ${outcome}, capture #${capture_id}` +
        `${replay ? " (replayed)" : ""}  key ${opts["idempotency-key"]}`,
    );
    const first = results[0]?.capture_id;
    if (replay && capture_id !== first) {
      console.error(`warning: replay ${i} answered capture #${capture_id}, not #${first}`);
    }
  }

  // 6. Report the last answer (replays repeat the first one).
  const result = results[results.length - 1];
  if (result === undefined) return;
  if (opts.json) {
    const { customer_id, outcome, matched_by, owner, tags, rule_changes } = result;
    console.log(
      JSON.stringify({ customer_id, outcome, matched_by, owner, tags, rule_changes, replayed }),
    );
    return;
  }
  const { customer_id, outcome, matched_by, owner } = result;
  say(`customer     #${customer_id} ${outcome}${matched_by ? ` (matched by ${matched_by})` : ""}`);
  say(`owner        ${owner ? `${owner.display_name} (#${owner.id})` : "unassigned pool"}`);
  say(`tags         ${result.tags.length === 0 ? "none" : result.tags.length}`);
  for (const t of result.tags) {
    say(`  ${t.group_name} / ${t.name}  ${t.color}  ${t.source}  ${t.reason ?? ""}`.trimEnd());
  }
  // The tags the tenant's rules gave (or took) in this capture, with the rule and why.
  const ruled = result.rule_changes.filter((c) => c.added);
  say(`rule tags    ${ruled.length === 0 ? "none" : ruled.length}`);
  for (const c of result.rule_changes) {
    const tag = result.tags.find((t) => t.tag_id === c.tag_id);
    const name = tag ? `${tag.group_name} / ${tag.name}` : `tag #${c.tag_id}`;
    say(`  ${c.added ? "+" : "-"} ${name}  rule "${c.rule_name}" v${c.rule_version}: ${c.reason}`);
  }
}

function describe({ field, value }: Filled): string {
  const shown =
    value === undefined
      ? "(left empty: cannot fill this type)"
      : typeof value === "string"
        ? value
        : JSON.stringify(value);
  return `  ${field.label} [${field.key}${field.required ? ", required" : ""}]: ${shown}`;
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
