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
  const analysis = response.result.analysis ?? {}
  decisions.push({
    result: response.overallResult,
    identity: analysis.identityAnalysis?.result ?? null,
    resource: analysis.resourceAnalysis?.result ?? null,
    deniedBy: [
      ...(analysis.identityAnalysis?.denyStatements ?? []).map((s) => `identity policy ${s.policyId} ${s.statement.Sid ?? ''}`.trim()),
      ...(analysis.resourceAnalysis?.denyStatements ?? []).map((s) => `resource policy ${s.statement.Sid ?? ''}`.trim()),
    ],
    ignoredContextKeys: response.result.ignoredContextKeys ?? [],
  })
}
process.stdout.write(JSON.stringify(decisions))
