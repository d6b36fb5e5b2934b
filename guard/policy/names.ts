// Names of profiles, tools and destinations are compared only after normalisation, so that
// `Send_Email`, `ＳＥＮＤ_ＥＭＡＩＬ` or `send\u200bemail` can neither match a grant by accident
// nor slip past a forbid: Unicode NFKC, format characters (category Cf: zero-width space, joiners,
// BOM, bidi controls) removed, lower case, trimmed. `_` and `-` stay distinct: folding them could
// make two different granted names collide.
export function normaliseName(name: string): string {
  return name
    .normalize('NFKC')
    .replace(/\p{Cf}/gu, '')
    .toLowerCase()
    .trim();
}
