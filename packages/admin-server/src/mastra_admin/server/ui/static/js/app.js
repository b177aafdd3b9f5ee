// Entry point of every page: checks the sign-in, fills the header, then hands the
// page to its module (static/js/pages/<page>.js, named by <body data-page>).

import { api, signInUrl, signOut, token } from "./lib/api.js";
import { h, mount } from "./lib/dom.js";
import { errorState } from "./lib/ui.js";

const body = document.body;
const page = body.dataset.page;
const isPublic = body.dataset.public === "true";

function header() {
  const out = document.querySelector('[data-action="sign-out"]');
  out?.addEventListener("click", () => signOut());
  const me = api("/api/me");
  me.then((user) => {
    const target = document.querySelector('[data-slot="whoami"]');
    if (target) mount(target, h("a", { href: "/account", title: "Your account" }, user.name || user.email));
  }).catch(() => {
    // the page itself reports the failure
  });
  return me;
}

async function main() {
  let me = Promise.resolve(null);
  if (!isPublic) {
    if (!token.get()) {
      window.location.replace(signInUrl());
      return;
    }
    me = header();
  }
  const module = await import(`./pages/${page}.js`);
  await module.render({ params: { ...body.dataset }, me });
}

main().catch((error) => {
  const target = document.getElementById("main");
  if (target) mount(target, errorState(error));
  else console.error(error);
});
