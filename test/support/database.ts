import { randomBytes } from "node:crypto";
import postgres from "postgres";

/** A database made for one test file (or test), dropped with `drop()`. */
export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

const connect = (url: string) => postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });

/** Creates a uniquely named empty database on the server behind `baseUrl` and returns its URL. */
export async function createTestDatabase(baseUrl: string): Promise<TestDatabase> {
  // Hex keeps the name a plain lower-case identifier, so it needs no quoting.
  const name = `km_test_${randomBytes(6).toString("hex")}`;
  const admin = connect(baseUrl);
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;

  let dropped: Promise<void> | undefined;
  const drop = async () => {
    const sql = connect(baseUrl);
    try {
      // A pool the test forgot to end would otherwise make DROP DATABASE fail.
      await sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name} and pid <> pg_backend_pid()`;
      const [row] = await sql<{ server_version_num: string }[]>`show server_version_num`;
      const force = Number(row?.server_version_num) >= 130_000 ? " with (force)" : "";
      await sql.unsafe(`drop database if exists ${name}${force}`);
    } finally {
      await sql.end({ timeout: 5 });
    }
  };
  return {
    url: url.toString(),
    drop: () => {
      dropped ??= drop();
      return dropped;
    },
  };
}
