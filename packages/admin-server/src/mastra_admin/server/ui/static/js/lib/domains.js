// A deployment's custom domains: each with its status, certificate and the DNS records
// to create (copyable), Verify and Remove; and the form that adds one. What the
// signed-in person may do comes from the API (domain-support), not from guessing
// their role: a custom role may allow it too.

import { api } from "./api.js";
import { h } from "./dom.js";
import { timeAgo } from "./format.js";
import { badge, button, confirmAction, copyButton, emptyState, field, form, table, toast } from "./ui.js";

const STATUS_HINT = {
  pending: "Waiting for its TXT record: create the records below, then verify.",
  verified: "Ownership proven: the router serves this domain.",
  failed: "Its TXT record holds another value: set it to the value below, then verify again.",
};

function certificate(domain) {
  const cert = domain.certificate;
  if (domain.status !== "verified") return h("span", { class: "muted" }, "after verification");
  if (!cert) return h("span", { class: "muted" }, "not reported by the router");
  const parts = [badge(cert.state === "issued" ? "ok" : cert.state, `certificate ${cert.state}`)];
  if (cert.issuer) parts.push(h("span", { class: "meta" }, ` by ${cert.issuer}`));
  if (cert.not_after) parts.push(h("span", { class: "meta" }, `, until ${new Date(cert.not_after).toISOString().slice(0, 10)}`));
  if (cert.error) parts.push(h("p", { class: "field-error" }, cert.error));
  return h("span", {}, parts);
}

function records(domain) {
  return table(
    [
      { label: "Type", className: "record-type", render: (r) => h("code", {}, r.type) },
      {
        label: "Name",
        className: "record-value",
        render: (r) => h("div", { class: "copy-row" }, h("code", { dataset: { record: "name" } }, r.name), copyButton(r.name, "Copy", { small: true, "aria-label": `Copy the name of the ${r.type} record` })),
      },
      {
        label: "Value",
        className: "record-value",
        render: (r) => h("div", { class: "copy-row" }, h("code", { dataset: { record: "value" } }, r.value), copyButton(r.value, "Copy", { small: true, "aria-label": `Copy the value of the ${r.type} record` })),
      },
      { label: "For", render: (r) => (r.purpose === "verification" ? "ownership" : "traffic") },
    ],
    domain.dns_records,
    { caption: `DNS records for ${domain.hostname}`, rowProps: (r) => ({ dataset: { recordType: r.type } }) },
  );
}

function domainCard(domain, support, reload) {
  const actions = [];
  if (support.may_verify && domain.status !== "verified") {
    actions.push(
      button(
        "Verify",
        async () => {
          const checked = await api(`/api/domains/${domain.id}/verify`, { method: "POST" });
          toast(checked.status === "verified" ? `${checked.hostname} is verified.` : `${checked.hostname} is ${checked.status}: ${checked.last_error || ""}`, checked.status === "verified" ? "info" : "error");
          await reload();
        },
        { small: true, "aria-label": `Verify ${domain.hostname}` },
      ),
    );
  }
  if (support.may_manage) {
    actions.push(
      button(
        "Remove",
        async () => {
          const ok = await confirmAction(`Remove ${domain.hostname}? The router stops serving it at once.`, { confirmLabel: "Remove domain" });
          if (!ok) return;
          await api(`/api/domains/${domain.id}`, { method: "DELETE" });
          toast(`${domain.hostname} removed.`);
          await reload();
        },
        { variant: "danger", small: true, "aria-label": `Remove ${domain.hostname}` },
      ),
    );
  }
  return h(
    "section",
    { class: "domain", "aria-label": domain.hostname, dataset: { domainId: domain.id, status: domain.status } },
    h(
      "div",
      { class: "domain-head" },
      h("h3", {}, h("code", {}, domain.hostname), " ", badge(domain.status)),
      h("div", { class: "actions" }, actions),
    ),
    h("p", { class: "meta" }, STATUS_HINT[domain.status] || ""),
    domain.last_error ? h("p", { class: "notice", role: "status" }, domain.last_error) : null,
    h(
      "dl",
      { class: "facts" },
      h("div", {}, h("dt", {}, "Certificate"), h("dd", {}, certificate(domain))),
      h("div", {}, h("dt", {}, "Last checked"), h("dd", {}, domain.last_checked_at ? timeAgo(domain.last_checked_at) : "never")),
      h("div", {}, h("dt", {}, "Verified"), h("dd", {}, domain.verified_at ? timeAgo(domain.verified_at) : "—")),
    ),
    domain.status === "verified" ? null : h("p", { class: "hint" }, "Create these records at the domain's DNS provider:"),
    records(domain),
  );
}

/** The loader and renderer of a deployment's Domains panel, for ``fill``. */
export function domainsPanel(deploymentId, reload) {
  const loader = async () => {
    const [support, domains] = await Promise.all([
      api(`/api/deployments/${deploymentId}/domain-support`),
      api(`/api/deployments/${deploymentId}/domains`),
    ]);
    return { support, domains };
  };
  const render = ({ support, domains }) => {
    if (!support.serves_custom_domains && !domains.length) {
      return emptyState(
        "Custom domains are not available here",
        "This installation's router does not serve custom domains; its operator can configure one that does.",
      );
    }
    const list = domains.length
      ? h("div", { class: "domains" }, domains.map((d) => domainCard(d, support, reload)))
      : emptyState("No custom domains", "Add a host name you own, such as shop.example.com, then prove it with a DNS record.");
    let adding;
    if (support.may_manage && support.serves_custom_domains) {
      adding = form({
        label: "Add a custom domain",
        submitLabel: "Add domain",
        fields: [
          field({
            label: "Host name",
            name: "hostname",
            required: true,
            maxlength: 254,
            placeholder: "shop.example.com",
            autocomplete: "off",
            spellcheck: "false",
            hint: `At most ${support.max_per_deployment} per deployment. International names are kept in their xn-- form.`,
          }),
        ],
        onSubmit: async (values) => {
          const added = await api(`/api/deployments/${deploymentId}/domains`, {
            method: "POST",
            body: { hostname: values.hostname.trim() },
          });
          toast(`${added.hostname} added: create its DNS records, then verify.`);
          await reload();
          return null;
        },
      });
    } else if (!support.may_manage) {
      adding = h("p", { class: "muted" }, "Team owners and admins add and remove custom domains.");
    }
    return [list, adding];
  };
  return { loader, render };
}
