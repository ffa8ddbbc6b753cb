// Package checks run after the build; filled in by the foundation work.
console.log('package checks: none yet')
