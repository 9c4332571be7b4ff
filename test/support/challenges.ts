/** Reading WWW-Authenticate values in tests, by the grammar of RFC 9110 §11.6.1. */

/** One challenge of a WWW-Authenticate list (RFC 9110 §11.6.1), parameters by lower-case name. */
interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;

/** Parses `scheme param="v", param=v, Scheme2 ...` strictly; throws on anything outside the grammar. */
export function parseChallenges(value: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const skip = (chars: RegExp) => {
    while (i < value.length && chars.test(value[i]!)) i++;
  };
  const token = (): string => {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(value);
    if (!m) throw new Error(`expected a token at ${i} in ${JSON.stringify(value)}`);
    i += m[0].length;
    return m[0];
  };
  while (i < value.length) {
    skip(/[ ,]/);
    if (i >= value.length) break;
    const name = token();
    skip(/ /);
    if (value[i] !== "=") {
      out.push({ scheme: name, params: {} });
      continue;
    }
    const current = out.at(-1);
    if (!current) throw new Error(`a parameter before any scheme in ${JSON.stringify(value)}`);
    i++;
    skip(/ /);
    let param: string;
    if (value[i] === '"') {
      i++;
      let text = "";
      while (i < value.length && value[i] !== '"') {
        if (value[i] === "\\") i++;
        text += value[i];
        i++;
      }
      if (value[i] !== '"') throw new Error(`unterminated quoted-string in ${JSON.stringify(value)}`);
      i++;
      param = text;
    } else param = token();
    current.params[name.toLowerCase()] = param;
    skip(/ /);
    if (i < value.length && value[i] !== ",")
      throw new Error(`expected a comma at ${i} in ${JSON.stringify(value)}`);
  }
  return out;
}
