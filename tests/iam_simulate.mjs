// Decides IAM requests with @cloud-copilot/iam-simulate: reads a JSON list of simulations on stdin and
// writes one decision per simulation, in order, on stdout. Used by tests/permissions.py.
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const simulations = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const decisions = []
for (const simulation of simulations) {
  const response = await runSimulation({ serviceControlPolicies: [], resourceControlPolicies: [], ...simulation }, {})
  if (response.resultType === 'error') {
    decisions.push({ result: 'Error', errors: response.errors })
    continue
  }
  // A resource with a wildcard (e.g. "*" for a call that names no resource of its own, such as an Application
  // Auto Scaling scalable target) is decided against each pattern the policies name; the overall result
  // stands for them all and the first analysis explains it.
  const detail = response.resultType === 'wildcard' ? response.results[0] ?? {} : response.result
  const analysis = detail.analysis ?? {}
  decisions.push({
    result: response.overallResult,
    identity: analysis.identityAnalysis?.result ?? null,
    resource: analysis.resourceAnalysis?.result ?? null,
    deniedBy: [
      ...(analysis.identityAnalysis?.denyStatements ?? []).map((s) => `identity policy ${s.policyId} ${s.statement.Sid ?? ''}`.trim()),
      ...(analysis.resourceAnalysis?.denyStatements ?? []).map((s) => `resource policy ${s.statement.Sid ?? ''}`.trim()),
    ],
    ignoredContextKeys: detail.ignoredContextKeys ?? [],
  })
}
process.stdout.write(JSON.stringify(decisions))
