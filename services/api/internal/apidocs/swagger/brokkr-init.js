// Starts Swagger UI on the broker's own OpenAPI document. The spec URL is
// resolved against the page (/swagger-ui -> /docs/openapi.json), so the UI
// keeps working when the broker is served under a path prefix.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: new URL("docs/openapi.json", window.location.href).toString(),
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
};
