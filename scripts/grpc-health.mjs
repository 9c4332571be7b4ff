/**
 * `node scripts/grpc-health.mjs <host:port> [service …] [--lists name …]`: calls grpc.health.v1.Health/Check for each
 * service ("" when none is given) and, with --lists, asks server reflection (v1) for its service list and requires
 * each name. Prints what it found; exits 0 only if every service is SERVING and every name is listed. Needs only
 * @grpc/grpc-js (a production dependency), so it runs from a production install too: messages are encoded by hand.
 */
import * as grpc from "@grpc/grpc-js";

const [address, ...rest] = process.argv.slice(2);
if (!address) {
  process.stderr.write("usage: node scripts/grpc-health.mjs <host:port> [service …] [--lists name …]\n");
  process.exit(2);
}
const split = rest.indexOf("--lists");
const services = split === -1 ? rest : rest.slice(0, split);
const listed = split === -1 ? [] : rest.slice(split + 1);
if (services.length === 0) services.push("");

const STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];
const field = (number, bytes) => Buffer.concat([Buffer.from([(number << 3) | 2, bytes.length]), bytes]);
const identity = (bytes) => bytes;
const client = new grpc.Client(address, grpc.credentials.createInsecure());
const deadline = () => Date.now() + 5_000;

function check(service) {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      identity,
      identity,
      field(1, Buffer.from(service)),
      { deadline: deadline() },
      (error, response) => {
        if (error) resolve(`error ${grpc.status[error.code] ?? error.code}: ${error.details}`);
        // HealthCheckResponse { ServingStatus status = 1; }: absent means 0 (UNKNOWN).
        else resolve(STATUS[response.length >= 2 && response[0] === 0x08 ? response[1] : 0]);
      },
    );
  });
}

function listServices() {
  return new Promise((resolve, reject) => {
    const call = client.makeBidiStreamRequest(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      identity,
      identity,
      { deadline: deadline() },
    );
    call.on("data", (response) => {
      resolve(response.toString("latin1"));
      call.end();
    });
    call.on("error", reject);
    // ServerReflectionRequest { string list_services = 7; }
    call.write(field(7, Buffer.alloc(0)));
  });
}

let ok = true;
for (const service of services) {
  const status = await check(service);
  process.stdout.write(`${address} health ${JSON.stringify(service)}: ${status}\n`);
  ok &&= status === "SERVING";
}
if (listed.length > 0) {
  const answer = await listServices().catch((error) => `error ${error.message}`);
  for (const name of listed) {
    // Each name is a length-delimited string inside the answer; finding the bytes is enough for a smoke test.
    const found = answer.includes(name);
    process.stdout.write(`${address} reflection lists ${name}: ${found ? "yes" : "no"}\n`);
    ok &&= found;
  }
}
client.close();
process.exit(ok ? 0 : 1);
