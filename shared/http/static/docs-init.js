// Starts Swagger UI on /<svc>/docs. The spec URL and OPENAPI_SWAGGER_UI_CONFIG come from the
// container's data attributes, so the page has no inline script.
window.addEventListener("load", function () {
  var el = document.getElementById("swagger-ui-container");
  var config = JSON.parse(el.getAttribute("data-config") || "{}");
  config.url = el.getAttribute("data-spec-url");
  config.dom_id = "#swagger-ui-container";
  if (!("validatorUrl" in config)) {
    config.validatorUrl = null; // no validator badge fetched from swagger.io
  }
  window.ui = SwaggerUIBundle(config);
});
