-- luasync.llm.config: a client's settings from llm.client{...} and the environment.
--
-- resolve(opts, getenv) -> cfg or nil, message. Fields the caller leaves out come
-- from the environment (API.md section 8):
--   LUASYNC_LLM_PROVIDER   openai | anthropic | ollama (else inferred from the variables below)
--   OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, OLLAMA_HOST
--   LUASYNC_LLM_MODEL      the model, else the provider's default (DEFAULT_MODEL)
local type, tostring, tonumber, pairs = type, tostring, tonumber, pairs

local M = {}

M.PROVIDERS = { openai = true, anthropic = true, ollama = true }

M.DEFAULT_MODEL = {
  openai = "gpt-4o-mini",
  anthropic = "claude-haiku-4-5",
  ollama = "llama3.2",
}

M.DEFAULT_BASE_URL = {
  openai = "https://api.openai.com/v1",
  anthropic = "https://api.anthropic.com",
  ollama = "http://127.0.0.1:11434",
}

M.NO_PROVIDER = "llm: no provider configured: set LUASYNC_LLM_PROVIDER (openai, anthropic or ollama) "
  .. "with OPENAI_API_KEY (and OPENAI_BASE_URL for other OpenAI-compatible servers), "
  .. "ANTHROPIC_API_KEY (ANTHROPIC_BASE_URL) or OLLAMA_HOST, or pass provider= to llm.client"

local function env(getenv, name)
  local v = getenv(name)
  if v == "" then return nil end
  return v
end

local function infer_provider(getenv)
  local p = env(getenv, "LUASYNC_LLM_PROVIDER")
  if p then return p:lower() end
  if env(getenv, "OPENAI_API_KEY") or env(getenv, "OPENAI_BASE_URL") then return "openai" end
  if env(getenv, "ANTHROPIC_API_KEY") or env(getenv, "ANTHROPIC_BASE_URL") then return "anthropic" end
  if env(getenv, "OLLAMA_HOST") then return "ollama" end
  return nil
end

--- ollama_host(s) -> base URL, as Ollama reads OLLAMA_HOST: "host", "host:port",
-- "http://host[:port]", "https://..."; no scheme means http and port 11434.
function M.ollama_host(s)
  s = (s or ""):gsub("^%s+", ""):gsub("%s+$", "")
  local scheme, rest = s:match("^(%a[%w+.-]*)://(.*)$")
  local default_port = nil
  if not scheme then
    scheme, rest, default_port = "http", s, "11434"
  end
  local hostport, path = rest:match("^([^/]*)(.*)$")
  if hostport == "" then hostport = "127.0.0.1" end
  local has_port = hostport:match(":%d+$") and not hostport:match("^%[[^%]]*%]$")
  if default_port and not has_port then hostport = hostport .. ":" .. default_port end
  return scheme:lower() .. "://" .. hostport .. (path:gsub("/+$", ""))
end

local function positive_int(v, name, default, allow_zero)
  if v == nil then return default end
  local n = tonumber(v)
  if n == nil or n % 1 ~= 0 or n < (allow_zero and 0 or 1) then
    return nil, "llm.client: " .. name .. " must be an integer >= " .. (allow_zero and 0 or 1)
  end
  return n
end

--- resolve(opts, getenv?) -> cfg | nil, message
-- cfg = {provider=, base_url=, api_key=, model=, max_concurrency=, max_retries=, timeout=, headers={...}}
function M.resolve(opts, getenv)
  getenv = getenv or os.getenv
  opts = opts or {}
  if type(opts) ~= "table" then return nil, "llm.client: expected a table of options" end
  local provider = opts.provider
  if provider == nil then provider = infer_provider(getenv) end
  if provider == nil then return nil, M.NO_PROVIDER end
  provider = tostring(provider):lower()
  if not M.PROVIDERS[provider] then
    return nil, "llm: unknown provider '" .. provider .. "' (expected openai, anthropic or ollama)"
  end

  local base_url, api_key = opts.base_url, opts.api_key
  if provider == "openai" then
    base_url = base_url or env(getenv, "OPENAI_BASE_URL") or M.DEFAULT_BASE_URL.openai
    if api_key == nil then api_key = env(getenv, "OPENAI_API_KEY") end
  elseif provider == "anthropic" then
    base_url = base_url or env(getenv, "ANTHROPIC_BASE_URL") or M.DEFAULT_BASE_URL.anthropic
    if api_key == nil then api_key = env(getenv, "ANTHROPIC_API_KEY") end
  else
    base_url = M.ollama_host(base_url or env(getenv, "OLLAMA_HOST") or "")
  end
  if type(base_url) ~= "string" or not base_url:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/]") then
    return nil, "llm: base_url must start with http:// or https://, got '" .. tostring(base_url) .. "'"
  end
  base_url = base_url:gsub("/+$", "")
  if api_key ~= nil then
    if type(api_key) ~= "string" then return nil, "llm.client: api_key must be a string" end
    if api_key:find("[%z\r\n]") then return nil, "llm: the API key contains a line break or NUL" end
    if api_key == "" then api_key = nil end
  end
  if api_key == nil and base_url == M.DEFAULT_BASE_URL[provider] and provider ~= "ollama" then
    local var = provider == "openai" and "OPENAI_API_KEY" or "ANTHROPIC_API_KEY"
    return nil, "llm: no API key for " .. provider .. ": set " .. var .. " or pass api_key= to llm.client"
  end

  local model = opts.model or env(getenv, "LUASYNC_LLM_MODEL") or M.DEFAULT_MODEL[provider]
  if type(model) ~= "string" or model == "" then return nil, "llm.client: model must be a non-empty string" end

  local max_concurrency, e1 = positive_int(opts.max_concurrency, "max_concurrency", 8)
  if not max_concurrency then return nil, e1 end
  local max_retries, e2 = positive_int(opts.max_retries, "max_retries", 2, true)
  if not max_retries then return nil, e2 end
  local timeout = opts.timeout
  if timeout ~= nil and (tonumber(timeout) == nil or tonumber(timeout) <= 0) then
    return nil, "llm.client: timeout must be a number of seconds > 0"
  end
  local headers = {}
  if opts.headers ~= nil then
    if type(opts.headers) ~= "table" then return nil, "llm.client: headers must be a table" end
    for k, v in pairs(opts.headers) do headers[tostring(k)] = tostring(v) end
  end
  return {
    provider = provider, base_url = base_url, api_key = api_key, model = model,
    max_concurrency = max_concurrency, max_retries = max_retries,
    timeout = tonumber(timeout) or 600, headers = headers,
  }
end

return M
