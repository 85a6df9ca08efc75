// Talking to the server. Every answer is JSON; errors carry {"error": "..."}.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status; // 0 when the server could not be reached
  }
}

export async function predict(blob, { signal } = {}) {
  let response;
  try {
    response = await fetch("/predict", {
      method: "POST",
      headers: { "Content-Type": blob.type || "application/octet-stream" },
      body: blob,
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("Can't reach the server", 0);
  }
  return readJson(response);
}

export async function modelInfo() {
  return readJson(await fetch("/api/model"));
}

async function readJson(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's error page, say
  }
  if (!response.ok) {
    throw new ApiError(body?.error || `The server answered ${response.status}`, response.status);
  }
  return body;
}
