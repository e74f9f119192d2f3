/** Where the API lives on a server (docs/api.md, "Conventions"): the server's routes and the API clients (`helpdesk listen`, `trigger`) both use it. */
export const API_BASE = '/helpdesk/api/v1';
