package apiclient

// Registration is what the generator-registration routes answer
// (AgentGeneratorRegistration in api-spec/openapi.yaml), under the name the
// CLI's commands use.
type Registration = AgentGeneratorRegistration
