import { api, lang, setLanguage, t } from "/static/app.js";

document.title = `${t("login")} · ${t("brand")}`;
for (const code of ["ja", "en"]) {
  const button = document.getElementById(`lang-${code}`);
  button.setAttribute("aria-pressed", String(code === lang));
  button.addEventListener("click", () => setLanguage(code));
}

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("status");
  status.textContent = "";
  try {
    const result = await api("/api/login", { body: {
      username: document.getElementById("username").value,
      password: document.getElementById("password").value } });
    sessionStorage.setItem("csrf", result.csrf_token);
    const next = new URLSearchParams(location.search).get("next");
    location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
  } catch (error) {
    // The server's words are English and for scripts: the page says it in the chosen language.
    status.textContent = error.status === 401 ? t("login_wrong")
      : error.status === 429 ? t("login_throttled")
      : error.status === 400 ? t("login_bad") : t("err_server");
  }
});
