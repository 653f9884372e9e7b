// The builder's session cookie, written from the page (Streamlit has no way to set a cookie from Python).
// Python sends {name, value, max_age} to keep the session across reloads, or {name, clear: true} at
// sign-out. SameSite=Strict; Secure when the page came over https. JavaScript cannot set HttpOnly:
// the value is an opaque, signed session id that the server can end at any time (see docs/operations.md).
export default function (component) {
  const data = component.data || {};
  if (!data.name) return;
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  const base = `; Path=/; SameSite=Strict${secure}`;
  if (data.clear) {
    document.cookie = `${data.name}=; Max-Age=0${base}`;
  } else if (data.value) {
    document.cookie = `${data.name}=${encodeURIComponent(data.value)}; Max-Age=${Math.max(0, Math.floor(data.max_age || 0))}${base}`;
  }
}
