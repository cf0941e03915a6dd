import { api, t } from "/static/app.js";

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("status");
  try {
    const result = await api("/api/login", { body: {
      username: document.getElementById("username").value,
      password: document.getElementById("password").value } });
    sessionStorage.setItem("csrf", result.csrf_token);
    const next = new URLSearchParams(location.search).get("next");
    location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
  } catch (error) {
    status.textContent = error.message;
  }
});
