"""The product's security baseline as a Pulumi CrossGuard policy pack.

One policy per control: AWS Security Hub's Foundational Security Best Practices (FSBP), the
Well-Architected Serverless Lens, and the product's own rules (tags, log retention). The pack
runs in two places with the same code:

- under the Pulumi engine (`pulumi preview/up --policy-pack policy`), once per layer's stack;
- offline in `python -m tooling.synth`, on the resources the five layer programs declare under
  the SDK's mocks, with the cross-layer controls evaluated over all five layers at once.

Controls that do not fit the product are suppressed, each with its reason, in
`policy/suppressions.yaml`; the pack and synth both read it.
"""
