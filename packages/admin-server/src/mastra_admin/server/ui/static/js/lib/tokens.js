// What token forms send: scopes from free text, an expiry date as the end of that day.

export function scopesFrom(text) {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function expiryFrom(value) {
  return value ? new Date(`${value}T23:59:59`).toISOString() : null;
}
