import { gateApproval } from "./approvals.js";
import type { CheckRequest } from "./check-request.js";
import type { KeyEntry } from "./key-entry.js";
import { applyLimits, type LimitOutcome } from "./limits.js";
import type { ApprovalGate, RateLimiter, UsageRecorder } from "./ports.js";
import type { KeySpace } from "./types.js";
import type { Verdict } from "./verdict.js";

/** What an allow still waits on once the key and its scopes passed: approval, then the rate limits. */
export interface Admission {
  entry: KeyEntry;
  space: KeySpace;
  cost: number;
  warnings: string[];
  /** The verdict to answer with; its limits are filled in once the buckets have been charged. */
  allow: Extract<Verdict, { kind: "allow" }>;
}

/** What admission needs: the approval gate, the rate limiter and its failure mode, and the usage recorder. */
export interface AdmissionOptions {
  limiter: RateLimiter | undefined;
  rateLimitFailure: "open" | "closed";
  onLimiterFailure?: (error: unknown) => void;
  usage: UsageRecorder;
  /** Where approval-level requests are queued; without it they are refused as needing approval. */
  approvals?: ApprovalGate;
  /** The request header a client retries an approved request with. */
  approvalHeader?: string;
}

/** Gates the request on a human approval of `scope`, then admits it as admitWithin does. */
export async function approveThenAdmit(
  o: AdmissionOptions,
  req: CheckRequest,
  admit: Admission,
  scope: string,
): Promise<Verdict> {
  const { entry, space } = admit;
  const gate = await gateApproval(
    o.approvals,
    o.approvalHeader ?? "x-keymesh-approval",
    req,
    {
      keyId: entry.key.id,
      workspaceId: entry.workspace.id,
      keySpaceId: space.id,
      credentialHeaders: space.credentialSources.map((s) =>
        s.kind === "header" ? s.header : "authorization",
      ),
    },
    scope,
  );
  if (gate.kind === "refused")
    return { kind: "deny", reason: "insufficient_scope", message: gate.message, limits: [] };
  if (gate.kind !== "pass") {
    const verdict: Extract<Verdict, { kind: "deny" }> = {
      kind: "deny",
      reason: "approval_required",
      message: `the scope ${scope} needs a human approval; the request was queued`,
      limits: [],
    };
    if (gate.kind === "pending") verdict.approval = { id: gate.id, status: "pending" };
    return verdict;
  }
  return admitWithin(o, admit);
}

/**
 * Charges the request's buckets and answers with the allow, or with the limiter's denial; directly, without a
 * promise, when there is nothing to charge.
 */
export function admitWithin(o: AdmissionOptions, admit: Admission): Verdict | Promise<Verdict> {
  const limited = applyLimits(o, admit.entry, admit.space, admit.cost, admit.warnings);
  return limited instanceof Promise
    ? limited.then((l) => admitted(o, admit, l))
    : admitted(o, admit, limited);
}

function admitted(o: AdmissionOptions, admit: Admission, limited: LimitOutcome): Verdict {
  if (limited.kind === "deny") return limited;
  o.usage.touch(admit.entry.key.id);
  admit.allow.limits = limited.limits;
  return admit.allow;
}
