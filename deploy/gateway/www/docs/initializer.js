// Ours, not the one swagger-ui-dist ships: that one loads the petstore from the internet.
// Everything this page needs comes from the gateway that serves it.
window.ui = SwaggerUIBundle({
  url: new URL("../openapi.json", window.location.href).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  // The default sends the document to validator.swagger.io for a badge.
  validatorUrl: null,
  // "Authorize" takes the bearer token; keep it out of localStorage.
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
