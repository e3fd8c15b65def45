// The WeChat side of the mini-program, played through the mock's `/__mock` control API.
// That API is not part of scantag's openapi.json, so it is called with plain fetch and
// typed by the small interfaces below (see miniprogram-mock/README.md).

/** What `wx.login()` would hand the mini-program, plus who the mock says it is. */
export interface LoginCode {
  code: string;
  openid: string;
  unionid: string | null;
  expires_in: number;
}

/** What `getPhoneNumber` would hand the mini-program. */
export interface PhoneCode {
  code: string;
  expires_in: number;
}

/** The mock's answer to a rejected control request. */
interface ControlError {
  error: string;
}

async function control<T>(mock: string, path: string, body: object): Promise<T> {
  const url = new URL(path, mock);
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  // The control API answers JSON either way: the value, or {"error": "..."}.
  const json: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const message = (json as ControlError | null)?.error ?? response.statusText;
    throw new Error(`WeChat mock ${path} answered ${response.status}: ${message}`);
  }
  return json as T;
}

/** `wx.login()`: a fresh single-use login code for this openid (and unionid). */
export function mintLoginCode(mock: string, openid: string, unionid?: string): Promise<LoginCode> {
  return control<LoginCode>(mock, "/__mock/login-codes", { openid, unionid });
}

/** The "use my WeChat phone number" button: a single-use phone code for this number. */
export function mintPhoneCode(mock: string, phoneNumber: string): Promise<PhoneCode> {
  return control<PhoneCode>(mock, "/__mock/phone-codes", { phone_number: phoneNumber });
}
