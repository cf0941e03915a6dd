import { me } from "/static/app.js";

const home = { admin: "/wallboard", supervisor: "/wallboard", operator: "/operator",
  client: "/portal" };
me().then((user) => { location.replace(home[user.role] || "/login"); });
