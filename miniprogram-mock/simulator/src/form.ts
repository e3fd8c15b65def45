// Fills in the capture form the way a visitor would: every field the form shows, nothing else
// (the server answers `not_in_form` for keys the channel does not ask for).

import { randomInt } from "node:crypto";
import type { components } from "./schema.js";

type CaptureForm = components["schemas"]["CaptureFormView"];
type FormField = components["schemas"]["FormFieldDisplay"];
export type CaptureRequest = components["schemas"]["CaptureRequest"];
/** The request as the form fills it; the caller adds the consent. */
export type FormValues = Omit<CaptureRequest, "consent">;

/** Values given on the command line; anything missing is made up. */
export interface Overrides {
  name?: string;
  phone?: string;
  company?: string;
  /** Send the phone as a verified `phone_code` instead of typing it. */
  phoneCode?: (phone: string) => Promise<string>;
}

const digits = (n: number): string => Array.from({ length: n }, () => randomInt(10)).join("");
const pick = <T>(items: readonly [T, ...T[]]): T => items[randomInt(items.length)] ?? items[0];

/** Cuts to `max_length` characters (code points, as the server counts them). */
function fit(text: string, field: FormField): string {
  const max = field.max_length ?? Infinity;
  return Array.from(text).slice(0, max).join("");
}

/** A mainland mobile number: 1, then 3–9, then nine digits. */
const randomPhone = (): string => `1${randomInt(3, 10)}${digits(9)}`;

/** Today in local time, as the date picker of the mini-program sends it. */
function today(): string {
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// A value for a custom field by its type; undefined when the simulator cannot make one.
function customValue(field: FormField): unknown {
  const first = field.options?.[0];
  switch (field.type) {
    case "text":
      return fit(pick(["想了解产品报价", "展会现场咨询", "请尽快联系我"]), field);
    case "number":
      return 1000;
    case "date":
      return today();
    case "single_select":
      return first;
    case "multi_select":
      return first === undefined ? undefined : [first];
    default:
      return undefined;
  }
}

/** A field of the form and what the simulator put in it (undefined: left empty). */
export interface Filled {
  field: FormField;
  value: unknown;
}

/** The capture request for this form, without consent (the caller adds it), and what went
 * into each field, for the report. */
export async function fillForm(
  form: CaptureForm,
  scene: string,
  overrides: Overrides,
): Promise<{ body: FormValues; filled: Filled[] }> {
  const body: FormValues = { scene };
  const custom: Record<string, unknown> = {};
  const filled: Filled[] = [];
  if (overrides.phoneCode && !form.fields.some((f) => f.key === "phone")) {
    throw new Error("--phone-code: the form of this scene does not ask for a phone number");
  }
  for (const field of form.fields) {
    let value: unknown;
    switch (field.key) {
      case "name":
        value = body.name = overrides.name ?? fit(`访客${digits(4)}`, field);
        break;
      case "phone": {
        const phone = overrides.phone ?? randomPhone();
        if (overrides.phoneCode) {
          body.phone_code = await overrides.phoneCode(phone);
          value = `${phone} (as phone_code ${body.phone_code})`;
        } else {
          value = body.phone = phone;
        }
        break;
      }
      case "company":
        value = body.company =
          overrides.company ?? fit(pick(["星河科技有限公司", "华东智能制造集团", "云帆贸易有限公司"]), field);
        break;
      case "industry":
        value = body.industry = fit(pick(["制造业", "零售", "互联网", "教育"]), field);
        break;
      case "region":
        value = body.region = fit(pick(["上海市浦东新区", "北京市海淀区", "广东省深圳市"]), field);
        break;
      default:
        if (field.key.startsWith("custom_fields.")) {
          value = customValue(field);
          if (value !== undefined) custom[field.key.slice("custom_fields.".length)] = value;
        }
    }
    if (value === undefined && field.required) {
      const what = `${field.key} (${field.label}) of type ${field.type}`;
      throw new Error(`cannot fill the required field ${what}`);
    }
    filled.push({ field, value });
  }
  if (Object.keys(custom).length > 0) body.custom_fields = custom;
  return { body, filled };
}
